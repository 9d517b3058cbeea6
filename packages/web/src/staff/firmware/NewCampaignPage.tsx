import { useEffect, useId, useState, type FormEvent, type ReactNode } from 'react';
import type {
  FleetResponse,
  FwCampaignBody,
  FwCampaignSummary,
  FwImagesResponse,
  FwTarget,
  FwTargetPreview,
} from '@kilowire/contract';
import { api, ApiError, qs } from '../../api.ts';
import { ErrorMessage, issuesByField, Loading, useApi } from '../../common.tsx';
import { Link } from '../../router.tsx';
import { PageHeader } from '../../ui/index.ts';
import { firmwareErrorText } from './words.ts';
import './firmware.css';

interface Form {
  name: string;
  imageId: string;
  targetKind: 'filter' | 'serials';
  version: string;
  area: string;
  feeder: string;
  tariffId: string;
  mode: '' | 'credit' | 'prepayment';
  serials: string;
  canaryKind: 'count' | 'pct';
  canary: string;
  waveSize: string;
  threshold: string;
  windowFrom: string;
  windowTo: string;
  feederMax: string;
  feederSpacingMin: string;
  confirmMin: string;
  reason: string;
}

const START: Form = {
  name: '',
  imageId: '',
  targetKind: 'filter',
  version: '',
  area: '',
  feeder: '',
  tariffId: '',
  mode: '',
  serials: '',
  canaryKind: 'count',
  canary: '5',
  waveSize: '100',
  threshold: '10',
  windowFrom: '01:00',
  windowTo: '05:00',
  feederMax: '5',
  feederSpacingMin: '5',
  confirmMin: '10',
  reason: '',
};

/** Serials pasted from anywhere: one per line, or separated by commas, spaces or semicolons. */
export function parseSerials(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/[\s,;]+/)
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean),
    ),
  ];
}

/** The target the form describes, or null while it selects nothing yet. */
function targetOf(f: Form): FwTarget | null {
  if (f.targetKind === 'serials') {
    const serials = parseSerials(f.serials);
    return serials.length ? { serials } : null;
  }
  return {
    filter: {
      ...(f.version ? { version: f.version } : {}),
      ...(f.area.trim() ? { area: f.area.trim() } : {}),
      ...(f.feeder.trim() ? { feeder: f.feeder.trim() } : {}),
      ...(f.tariffId ? { tariffId: Number(f.tariffId) } : {}),
      ...(f.mode ? { mode: f.mode } : {}),
    },
  };
}

const int = (s: string): number => (/^\d+$/.test(s.trim()) ? Number(s.trim()) : NaN);

/**
 * A new campaign: which image, which meters (a filter over the fleet or pasted serials, with a
 * live count of the meters that can take it), the canary and the waves, the halt threshold, the
 * local activation window and the feeder limits. Submitting asks a second supplier admin to
 * approve: nothing reaches a meter before that.
 */
export default function NewCampaignPage() {
  const id = useId();
  const images = useApi<FwImagesResponse>('/api/firmware/images');
  // The fleet's counts name the versions and tariffs the filter can choose from.
  const fleet = useApi<FleetResponse>(`/api/fleet${qs({ limit: 1 })}`);
  const [f, setF] = useState<Form>(() => {
    const image = new URLSearchParams(location.search).get('image');
    return { ...START, imageId: image && /^\d+$/.test(image) ? image : '' };
  });
  const set = <K extends keyof Form>(k: K, v: Form[K]): void => setF((x) => ({ ...x, [k]: v }));
  const [preview, setPreview] = useState<{
    data: FwTargetPreview | null;
    error: ApiError | null;
    busy: boolean;
  }>({
    data: null,
    error: null,
    busy: false,
  });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<FwCampaignSummary | null>(null);

  // The default image: the newest, once the list is in.
  useEffect(() => {
    const first = images.data?.items[0];
    if (first && !f.imageId) set('imageId', String(first.id));
  }, [images.data, f.imageId]);

  const target = targetOf(f);
  const targetKey = JSON.stringify(target);
  const imageId = Number(f.imageId);
  // The live count: asked again a moment after the target or the image stops changing.
  useEffect(() => {
    if (!imageId || !target) {
      setPreview({ data: null, error: null, busy: false });
      return;
    }
    let live = true;
    setPreview((p) => ({ ...p, busy: true }));
    const t = setTimeout(() => {
      api<FwTargetPreview>('POST', '/api/firmware/campaigns/preview', { imageId, target }).then(
        (data) => live && setPreview({ data, error: null, busy: false }),
        (e: unknown) =>
          live &&
          setPreview({
            data: null,
            error: e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)),
            busy: false,
          }),
      );
    }, 400);
    return () => {
      live = false;
      clearTimeout(t);
    };
    // targetKey stands for target (a new object each render).
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [imageId, targetKey]);

  const check = (): { body: FwCampaignBody | null; errs: Record<string, string> } => {
    const errs: Record<string, string> = {};
    if (!f.name.trim()) errs.name = 'Give the campaign a name.';
    if (!imageId) errs.imageId = 'Choose an image.';
    if (!target) errs.target = 'Paste at least one meter serial.';
    const canary = f.canaryKind === 'count' ? int(f.canary) : Number(f.canary.replace(',', '.'));
    if (!(canary > 0) || (f.canaryKind === 'pct' && canary > 100))
      errs.canaryCount =
        f.canaryKind === 'count'
          ? 'Enter a whole number of meters, 1 or more.'
          : 'Enter a share between 0 and 100 %.';
    const wave = int(f.waveSize);
    if (!(wave >= 1)) errs.waveSize = 'Enter a whole number of meters, 1 or more.';
    const threshold = Number(f.threshold.replace(',', '.'));
    if (f.threshold.trim() === '' || !(threshold >= 0 && threshold <= 100))
      errs.failureThresholdPct = 'Enter a share between 0 and 100 %.';
    if (!f.windowFrom) errs.windowFrom = 'Enter the start of the window.';
    if (!f.windowTo) errs.windowTo = 'Enter the end of the window.';
    else if (f.windowFrom === f.windowTo)
      errs.windowTo = 'The window must not be empty: choose a different end.';
    const feederMax = int(f.feederMax);
    if (!(feederMax >= 1)) errs.feederMax = 'Enter a whole number, 1 or more.';
    const spacing = int(f.feederSpacingMin);
    if (!(spacing >= 1 && spacing <= 1440)) errs.feederSpacingS = 'Enter minutes between 1 and 1440.';
    const confirm = int(f.confirmMin);
    if (!(confirm >= 1 && confirm <= 1440)) errs.confirmS = 'Enter minutes between 1 and 1440.';
    if (!f.reason.trim()) errs.reason = 'Say why: the admin who approves reads it.';
    if (Object.keys(errs).length || !target) return { body: null, errs };
    return {
      errs,
      body: {
        name: f.name.trim(),
        imageId,
        target,
        ...(f.canaryKind === 'count' ? { canaryCount: canary } : { canaryPct: canary }),
        waveSize: wave,
        failureThresholdPct: threshold,
        windowFrom: f.windowFrom,
        windowTo: f.windowTo,
        feederMax,
        feederSpacingS: spacing * 60,
        confirmS: confirm * 60,
        reason: f.reason.trim(),
      },
    };
  };

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    const { body, errs } = check();
    setErrors(errs);
    setFailure(null);
    if (!body) {
      // Take the person to the first problem.
      const first = document.querySelector<HTMLElement>(
        '.fw-form .field-error input, .fw-form .field-error textarea, .fw-form .field-error select',
      );
      first?.focus();
      return;
    }
    setBusy(true);
    api<FwCampaignSummary>('POST', '/api/firmware/campaigns', body).then(
      (c) => {
        setBusy(false);
        setCreated(c);
      },
      (err: unknown) => {
        setBusy(false);
        if (err instanceof ApiError && err.code === 'VALIDATION') setErrors(issuesByField(err));
        setFailure(err instanceof ApiError ? firmwareErrorText(err) : String(err));
      },
    );
  };

  if (created)
    return (
      <div className="fw-page">
        <PageHeader title="Campaign created" />
        <div className="notice notice-info" role="status">
          <h2>Waiting for a second admin&rsquo;s approval</h2>
          <p>
            <strong>{created.name}</strong> ({created.image.version} to {created.meters} meter
            {created.meters === 1 ? '' : 's'}) reaches no meter until another supplier admin approves it on
            the Approvals page. Its canary stage starts as soon as they do.
          </p>
        </div>
        <div className="form-actions">
          <Link className="btn" href={`/firmware/campaigns/${created.id}`}>
            Open the campaign
          </Link>
          <Link className="btn btn-secondary" href="/approvals">
            Approvals
          </Link>
        </div>
      </div>
    );

  const field = (
    key: string,
    label: string,
    input: (aria: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: true }) => ReactNode,
    hint?: string,
  ) => {
    const err = errors[key];
    const ids = [hint ? `${id}-${key}-hint` : '', err ? `${id}-${key}-err` : ''].filter(Boolean).join(' ');
    return (
      <div className={`field${err ? ' field-error' : ''}`}>
        <label htmlFor={`${id}-${key}`}>{label}</label>
        {hint && (
          <p className="hint" id={`${id}-${key}-hint`}>
            {hint}
          </p>
        )}
        {err && (
          <p className="error-text" id={`${id}-${key}-err`}>
            {err}
          </p>
        )}
        {input({
          id: `${id}-${key}`,
          ...(ids ? { 'aria-describedby': ids } : {}),
          ...(err ? { 'aria-invalid': true as const } : {}),
        })}
      </div>
    );
  };

  /** A short number box bound to one form value (canary, waves, threshold, feeder limits, confirmation). */
  const numberField = (
    key: string,
    label: string,
    value: 'canary' | 'waveSize' | 'threshold' | 'feederMax' | 'feederSpacingMin' | 'confirmMin',
    hint?: string,
    decimal = false,
  ) =>
    field(
      key,
      label,
      (a) => (
        <input
          {...a}
          className="input-short"
          inputMode={decimal ? 'decimal' : 'numeric'}
          value={f[value]}
          onChange={(e) => set(value, e.target.value)}
        />
      ),
      hint,
    );

  const image = images.data?.items.find((i) => i.id === imageId);
  const c = fleet.data?.counts;
  const p = preview.data;
  return (
    <div className="fw-page">
      <PageHeader
        title="New firmware campaign"
        description="Nothing reaches a meter until a second supplier admin approves the campaign."
      />
      {images.error && <ErrorMessage error={images.error} retry={images.reload} />}
      {!images.data && !images.error && <Loading what="images" />}
      {images.data && images.data.items.length === 0 && (
        <div className="notice notice-warn" role="status">
          <p>
            There is no image to send yet. <Link href="/firmware">Upload a signed image</Link> first.
          </p>
        </div>
      )}
      {images.data && images.data.items.length > 0 && (
        <form className="fw-form" onSubmit={submit} noValidate>
          <fieldset>
            <legend>What</legend>
            <div className="fw-form-grid">
              {field('name', 'Campaign name', (a) => (
                <input
                  {...a}
                  type="text"
                  maxLength={80}
                  value={f.name}
                  onChange={(e) => set('name', e.target.value)}
                />
              ))}
              {field(
                'imageId',
                'Image',
                (a) => (
                  <select {...a} value={f.imageId} onChange={(e) => set('imageId', e.target.value)}>
                    {images.data!.items.map((i) => (
                      <option key={i.id} value={i.id}>
                        {i.version} · {i.hardwareClass} · sequence {i.sequence}
                      </option>
                    ))}
                  </select>
                ),
                image
                  ? `Only meters of hardware class ${image.hardwareClass} below sequence ${image.sequence} can take it.`
                  : undefined,
              )}
            </div>
          </fieldset>

          <fieldset>
            <legend>Which meters</legend>
            <div className="fw-radio-row" role="radiogroup" aria-label="Choose meters by">
              <label className="check">
                <input
                  type="radio"
                  name={`${id}-tk`}
                  checked={f.targetKind === 'filter'}
                  onChange={() => set('targetKind', 'filter')}
                />
                By filter over the fleet
              </label>
              <label className="check">
                <input
                  type="radio"
                  name={`${id}-tk`}
                  checked={f.targetKind === 'serials'}
                  onChange={() => set('targetKind', 'serials')}
                />
                A list of serials
              </label>
            </div>
            {f.targetKind === 'filter' ? (
              <div className="fw-form-grid">
                {field('version', 'Running version', (a) => (
                  <select {...a} value={f.version} onChange={(e) => set('version', e.target.value)}>
                    <option value="">Any</option>
                    {(c?.firmware ?? []).map((v) => (
                      <option key={v.version} value={v.version}>
                        {v.version} ({v.count})
                      </option>
                    ))}
                  </select>
                ))}
                {field('tariffId', 'Tariff', (a) => (
                  <select {...a} value={f.tariffId} onChange={(e) => set('tariffId', e.target.value)}>
                    <option value="">Any</option>
                    {(c?.tariffs ?? []).map((t) => (
                      <option key={t.id} value={t.id}>
                        {t.name} ({t.count})
                      </option>
                    ))}
                  </select>
                ))}
                {field('mode', 'Payment mode', (a) => (
                  <select {...a} value={f.mode} onChange={(e) => set('mode', e.target.value as Form['mode'])}>
                    <option value="">Any</option>
                    <option value="credit">Credit</option>
                    <option value="prepayment">Prepayment</option>
                  </select>
                ))}
                {field(
                  'area',
                  'Network area (optional)',
                  (a) => (
                    <input
                      {...a}
                      type="text"
                      maxLength={64}
                      value={f.area}
                      onChange={(e) => set('area', e.target.value)}
                    />
                  ),
                  'Its code, e.g. EAST',
                )}
                {field(
                  'feeder',
                  'Feeder (optional)',
                  (a) => (
                    <input
                      {...a}
                      type="text"
                      maxLength={64}
                      value={f.feeder}
                      onChange={(e) => set('feeder', e.target.value)}
                    />
                  ),
                  'Its code, e.g. EAST-1',
                )}
              </div>
            ) : (
              field(
                'target',
                'Meter serials',
                (a) => (
                  <textarea
                    {...a}
                    rows={5}
                    value={f.serials}
                    placeholder={'KW000001\nKW000002'}
                    onChange={(e) => set('serials', e.target.value)}
                  />
                ),
                'One per line, or separated by commas or spaces.',
              )
            )}
            <div className="notice fw-preview" role="status" aria-live="polite">
              {preview.error ? (
                <p>Could not count the meters: {firmwareErrorText(preview.error)}</p>
              ) : !target ? (
                <p>Paste serials to see how many meters can take the image.</p>
              ) : !p ? (
                <p>Counting the meters…</p>
              ) : (
                <>
                  <p>
                    <strong>
                      {p.meters} meter{p.meters === 1 ? '' : 's'}
                    </strong>{' '}
                    will get {image?.version ?? 'the image'}
                    {preview.busy ? ' (counting again…)' : '.'}
                  </p>
                  {(p.excluded.otherHardware > 0 ||
                    p.excluded.notNewer > 0 ||
                    p.excluded.busy > 0 ||
                    p.excluded.notFound.length > 0) && (
                    <p className="muted">
                      Left out:{' '}
                      {[
                        p.excluded.otherHardware > 0 &&
                          `${p.excluded.otherHardware} of another hardware class`,
                        p.excluded.notNewer > 0 && `${p.excluded.notNewer} already at or above this sequence`,
                        p.excluded.busy > 0 && `${p.excluded.busy} in another transfer`,
                        p.excluded.notFound.length > 0 &&
                          `${p.excluded.notFound.length} not found (${p.excluded.notFound.slice(0, 5).join(', ')}${p.excluded.notFound.length > 5 ? '…' : ''})`,
                      ]
                        .filter(Boolean)
                        .join('; ')}
                      .
                    </p>
                  )}
                </>
              )}
            </div>
          </fieldset>

          <fieldset>
            <legend>Stages and halting</legend>
            <div className="fw-radio-row" role="radiogroup" aria-label="Canary size as">
              <label className="check">
                <input
                  type="radio"
                  name={`${id}-ck`}
                  checked={f.canaryKind === 'count'}
                  onChange={() => set('canaryKind', 'count')}
                />
                Canary as a number of meters
              </label>
              <label className="check">
                <input
                  type="radio"
                  name={`${id}-ck`}
                  checked={f.canaryKind === 'pct'}
                  onChange={() => set('canaryKind', 'pct')}
                />
                Canary as a share
              </label>
            </div>
            <div className="fw-form-grid">
              {numberField(
                'canaryCount',
                f.canaryKind === 'count' ? 'Canary (meters)' : 'Canary (%)',
                'canary',
                'The first stage: the rest waits until it ends well.',
                f.canaryKind !== 'count',
              )}
              {numberField('waveSize', 'Wave size (meters)', 'waveSize', 'Each later stage takes this many.')}
              {numberField(
                'failureThresholdPct',
                'Halt when failures pass (%)',
                'threshold',
                'Of a stage’s meters: refusals, failed checks, reverts and meters not returning.',
                true,
              )}
            </div>
          </fieldset>

          <fieldset>
            <legend>When and how fast</legend>
            <div className="fw-form-grid">
              {field(
                'windowFrom',
                'Activation window from',
                (a) => (
                  <input
                    {...a}
                    type="time"
                    value={f.windowFrom}
                    onChange={(e) => set('windowFrom', e.target.value)}
                  />
                ),
                'In each meter’s local time. Downloads run at any time; reboots only in the window.',
              )}
              {field(
                'windowTo',
                'Activation window to',
                (a) => (
                  <input
                    {...a}
                    type="time"
                    value={f.windowTo}
                    onChange={(e) => set('windowTo', e.target.value)}
                  />
                ),
                'Earlier than “from” runs past midnight.',
              )}
              {numberField('feederMax', 'Reboots per feeder at a time', 'feederMax')}
              {numberField(
                'feederSpacingS',
                'Feeder spacing (minutes)',
                'feederSpacingMin',
                'Between groups of reboots on one feeder.',
              )}
              {numberField(
                'confirmS',
                'Confirmation time (minutes)',
                'confirmMin',
                'A meter that has not reconnected on the new image by then goes back to its old one.',
              )}
            </div>
          </fieldset>

          {field(
            'reason',
            'Why',
            (a) => (
              <textarea
                {...a}
                rows={3}
                maxLength={500}
                value={f.reason}
                onChange={(e) => set('reason', e.target.value)}
              />
            ),
            'Shown to the admin who approves, and kept in the audit log.',
          )}
          {failure && (
            <div className="notice notice-error" role="alert">
              <p>{failure}</p>
            </div>
          )}
          <div className="form-actions">
            <button type="submit" className="btn" disabled={busy}>
              {busy ? 'Working…' : 'Ask for approval'}
            </button>
            <Link className="btn btn-secondary" href="/firmware/campaigns">
              Cancel
            </Link>
          </div>
        </form>
      )}
    </div>
  );
}
