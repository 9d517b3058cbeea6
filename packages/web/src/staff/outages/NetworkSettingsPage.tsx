import { useEffect, useId, useState, type FormEvent } from 'react';
import type { OutageSettings, OutageSettingsBody } from '@kilowire/contract';
import { normaliseMobile } from '@kilowire/contract/phone';
import { api, ApiError } from '../../api.ts';
import { ErrorMessage, issuesByField, Loading, useApi, useSession } from '../../common.tsx';
import { PageHeader, useToast } from '../../ui/index.ts';
import './outages.css';

type NumKey = Exclude<keyof OutageSettingsBody, 'oncallEmails' | 'oncallMobiles'>;
const NUMBERS: { key: NumKey; label: string; hint: string; step?: string }[] = [
  { key: 'outageMinMeters', label: 'Meters off to open a feeder incident', hint: 'Within the window below.' },
  {
    key: 'outageMinSharePct',
    label: 'Or this share of the feeder (%)',
    hint: 'Two meters at least.',
    step: '0.01',
  },
  {
    key: 'outageWindowS',
    label: 'Window (seconds)',
    hint: 'A meter off alone for longer is a single-household outage.',
  },
  {
    key: 'silentAfterS',
    label: 'Silent after (seconds)',
    hint: 'A meter that sends nothing for this long counts as off.',
  },
  {
    key: 'outageRestoreGraceS',
    label: 'Wait for the rest (seconds)',
    hint: 'After the first meters are back, those still off become stragglers.',
  },
  { key: 'outageAutoCloseH', label: 'Close restored incidents after (hours)', hint: '' },
  { key: 'slaFeederMin', label: 'Restore a feeder within (minutes)', hint: 'From the first power failure.' },
  { key: 'slaSingleMin', label: 'Restore a single household within (minutes)', hint: '' },
  {
    key: 'slaAtRiskPct',
    label: 'At risk after (% of the target)',
    hint: 'The control room is alerted once.',
  },
];

const lines = (s: string) =>
  s
    .split(/[\n,;]+/)
    .map((x) => x.trim())
    .filter(Boolean);

/**
 * The operator's outage rules, restoration targets and on-call contacts. Operator admins
 * change them; other operator staff read them. New targets apply to incidents opened after.
 */
export default function NetworkSettingsPage() {
  const uid = useId();
  const toast = useToast();
  const { me } = useSession();
  const canEdit = me.capabilities.includes('network.settings');
  const loaded = useApi<OutageSettings>('/api/network/outage-settings');
  const [form, setForm] = useState<Record<NumKey, string> & { emails: string; mobiles: string }>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [local, setLocal] = useState<Record<string, string>>({});
  useEffect(() => {
    const s = loaded.data;
    if (!s) return;
    setForm({
      ...(Object.fromEntries(NUMBERS.map((n) => [n.key, String(s[n.key])])) as Record<NumKey, string>),
      emails: s.oncallEmails.join('\n'),
      mobiles: s.oncallMobiles.join('\n'),
    });
  }, [loaded.data]);
  const issues = { ...issuesByField(error), ...local };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!form) return;
    const bad: Record<string, string> = {};
    const mobiles = lines(form.mobiles);
    const wrong = mobiles.filter((m) => !normaliseMobile(m));
    if (wrong.length) bad.oncallMobiles = `Not a mobile number: ${wrong.join(', ')}`;
    setLocal(bad);
    if (Object.keys(bad).length) return;
    const body = {
      ...(Object.fromEntries(NUMBERS.map((n) => [n.key, Number(form[n.key])])) as Record<NumKey, number>),
      oncallEmails: lines(form.emails),
      oncallMobiles: mobiles,
    } satisfies OutageSettingsBody;
    setBusy(true);
    setError(null);
    api<OutageSettings>('PUT', '/api/network/outage-settings', body).then(
      () => {
        setBusy(false);
        toast.show('Outage settings saved');
        loaded.reload();
      },
      (err: unknown) => {
        setBusy(false);
        setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err)));
      },
    );
  };

  return (
    <>
      <PageHeader
        title="Outage settings"
        description="When meters losing power make an incident, the restoration targets, and who is called."
      />
      {loaded.error && <ErrorMessage error={loaded.error} retry={loaded.reload} />}
      {loaded.loading && !form && <Loading what="the settings" />}
      {form && (
        <form className="outage-settings" noValidate onSubmit={submit}>
          <section className="card" aria-labelledby={`${uid}-rules`}>
            <h2 id={`${uid}-rules`}>Outage rules and SLA targets</h2>
            <fieldset className="plain-fieldset" disabled={!canEdit} aria-labelledby={`${uid}-rules`}>
              <div className="settings-grid">
                {NUMBERS.map((n) => (
                  <div key={n.key} className={`field${issues[n.key] ? ' field-error' : ''}`}>
                    <label htmlFor={`${uid}-${n.key}`}>{n.label}</label>
                    <input
                      id={`${uid}-${n.key}`}
                      type="number"
                      inputMode="decimal"
                      step={n.step ?? '1'}
                      value={form[n.key]}
                      onChange={(e) => setForm({ ...form, [n.key]: e.target.value })}
                      aria-invalid={issues[n.key] ? true : undefined}
                      aria-describedby={`${uid}-${n.key}-hint`}
                    />
                    <p className={issues[n.key] ? 'error-text' : 'hint'} id={`${uid}-${n.key}-hint`}>
                      {issues[n.key] ?? n.hint}
                    </p>
                  </div>
                ))}
              </div>
            </fieldset>
          </section>
          <section className="card" aria-labelledby={`${uid}-oncall`}>
            <h2 id={`${uid}-oncall`}>On call</h2>
            <fieldset className="plain-fieldset" disabled={!canEdit} aria-labelledby={`${uid}-oncall`}>
              <p className="muted">
                Every alert about an incident goes to your staff by email and to these contacts; a missed
                target is sent by SMS too.
              </p>
              <div className={`field${issues.oncallEmails ? ' field-error' : ''}`}>
                <label htmlFor={`${uid}-emails`}>On-call emails (one a line)</label>
                <textarea
                  id={`${uid}-emails`}
                  rows={3}
                  value={form.emails}
                  onChange={(e) => setForm({ ...form, emails: e.target.value })}
                  aria-invalid={issues.oncallEmails ? true : undefined}
                  aria-describedby={issues.oncallEmails ? `${uid}-emails-err` : undefined}
                />
                {issues.oncallEmails && (
                  <p className="error-text" id={`${uid}-emails-err`}>
                    Check the email addresses.
                  </p>
                )}
              </div>
              <div className={`field${issues.oncallMobiles ? ' field-error' : ''}`}>
                <label htmlFor={`${uid}-mobiles`}>On-call mobiles (one a line)</label>
                <textarea
                  id={`${uid}-mobiles`}
                  rows={3}
                  value={form.mobiles}
                  onChange={(e) => setForm({ ...form, mobiles: e.target.value })}
                  aria-invalid={issues.oncallMobiles ? true : undefined}
                  aria-describedby={issues.oncallMobiles ? `${uid}-mobiles-err` : undefined}
                />
                {issues.oncallMobiles && (
                  <p className="error-text" id={`${uid}-mobiles-err`}>
                    {issues.oncallMobiles}
                  </p>
                )}
              </div>
            </fieldset>
          </section>
          {error && !Object.keys(issuesByField(error)).length && <ErrorMessage error={error} />}
          {canEdit ? (
            <div className="form-actions">
              <button type="submit" className="btn" disabled={busy}>
                Save settings
              </button>
            </div>
          ) : (
            <p className="notice notice-info">Only your organisation's administrators can change these.</p>
          )}
        </form>
      )}
    </>
  );
}
