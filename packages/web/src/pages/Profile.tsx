import { useId, useState, type FormEvent } from 'react';
import type { Channel, PasswordBody, Profile, ProfileUpdate } from '@kilowire/contract';
import {
  HOUSEHOLD_ALERT_TYPES,
  CHANNELS,
  MIN_PASSWORD_LENGTH as MIN_PASSWORD,
  type HouseholdAlertType,
} from '@kilowire/contract/enums';
import { api, ApiError } from '../api.ts';
import { ErrorMessage, issuesByField, Loading, PageHeading, useApi, useSession } from '../common.tsx';
import { normaliseE164 } from '../format.ts';
import { ALERT_LABELS, CHANNEL_LABELS } from '../labels.ts';
import { DownloadMyData } from './DownloadMyData.tsx';

export function ProfilePage() {
  const loaded = useApi<Profile>('/api/me/profile');
  return (
    <>
      <PageHeading title="Profile">Your profile</PageHeading>
      {loaded.error ? (
        <ErrorMessage error={loaded.error} retry={loaded.reload} />
      ) : !loaded.data ? (
        <Loading what="your profile" />
      ) : (
        <ProfileForm initial={loaded.data} />
      )}
      <PasswordForm />
      <DownloadMyData />
    </>
  );
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function ProfileForm({ initial }: { initial: Profile }) {
  const [name, setName] = useState(initial.name);
  const [email, setEmail] = useState(initial.email ?? '');
  const [mobile, setMobile] = useState(initial.mobile ?? '');
  const [channels, setChannels] = useState<Profile['channels']>(initial.channels);
  const [quiet, setQuiet] = useState(initial.quietHours !== null);
  const [from, setFrom] = useState(initial.quietHours?.from ?? '22:00');
  const [to, setTo] = useState(initial.quietHours?.to ?? '07:00');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [status, setStatus] = useState('');
  const [busy, setBusy] = useState(false);
  const ids = useId();

  const setChannel = (t: HouseholdAlertType, c: Channel, v: boolean): void =>
    setChannels((cur) => ({ ...cur, [t]: { ...cur[t], [c]: v } }));

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    const errs: Record<string, string> = {};
    if (!name.trim()) errs.name = 'Enter your name.';
    if (email.trim() && !EMAIL.test(email.trim()))
      errs.email = 'Enter an email address like name@example.com.';
    const mobileNorm = mobile.trim() ? normaliseE164(mobile) : null;
    if (mobile.trim() && !mobileNorm) {
      errs.mobile =
        'Enter a mobile number, for example 07700 900123, or from abroad + then the country code, for example +33 6 12 34 56 78.';
    }
    const anySms = HOUSEHOLD_ALERT_TYPES.some((t) => channels[t].sms);
    const anyEmail = HOUSEHOLD_ALERT_TYPES.some((t) => channels[t].email);
    if (anySms && !mobile.trim() && !errs.mobile) errs.mobile = 'Add a mobile number to get alerts by SMS.';
    if (anyEmail && !email.trim() && !errs.email) errs.email = 'Add an email address to get alerts by email.';
    if (quiet && (!/^\d{2}:\d{2}$/.test(from) || !/^\d{2}:\d{2}$/.test(to)))
      errs.quietHours = 'Enter both times, for example 22:00 and 07:00.';
    else if (quiet && from === to) errs.quietHours = 'The start and end of quiet hours must differ.';
    setErrors(errs);
    setStatus('');
    const first = Object.keys(errs)[0];
    if (first) {
      document.getElementById(`${ids}-${first}`)?.focus();
      return;
    }
    const body: ProfileUpdate = {
      name: name.trim(),
      email: email.trim() || null,
      mobile: mobileNorm,
      quietHours: quiet ? { from, to } : null,
      channels,
    };
    setBusy(true);
    setFailure(null);
    api<Profile>('PUT', '/api/me/profile', body).then(
      (res) => {
        setBusy(false);
        setMobile(res.mobile ?? '');
        setStatus('Profile saved.');
      },
      (err: unknown) => {
        setBusy(false);
        const e2 = err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err));
        setErrors(issuesByField(e2));
        setFailure(e2);
      },
    );
  };

  const err = (f: string) =>
    errors[f] ? (
      <p className="error-text" id={`${ids}-${f}-err`}>
        <span aria-hidden="true">⚠ </span>
        {errors[f]}
      </p>
    ) : null;
  const described = (f: string, hint?: string) =>
    [errors[f] ? `${ids}-${f}-err` : '', hint ?? ''].filter(Boolean).join(' ') || undefined;

  return (
    <form onSubmit={submit} noValidate className="card form" aria-labelledby={`${ids}-h`}>
      <h2 id={`${ids}-h`}>Contact details and alerts</h2>
      <div className={`field${errors.name ? ' field-error' : ''}`}>
        <label htmlFor={`${ids}-name`}>Name</label>
        {err('name')}
        <input
          id={`${ids}-name`}
          autoComplete="name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          aria-invalid={errors.name ? true : undefined}
          aria-describedby={described('name')}
        />
      </div>
      <div className={`field${errors.email ? ' field-error' : ''}`}>
        <label htmlFor={`${ids}-email`}>Email (optional)</label>
        {err('email')}
        <input
          id={`${ids}-email`}
          type="email"
          autoComplete="email"
          spellCheck={false}
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          aria-invalid={errors.email ? true : undefined}
          aria-describedby={described('email')}
        />
      </div>
      <div className={`field${errors.mobile ? ' field-error' : ''}`}>
        <label htmlFor={`${ids}-mobile`}>Mobile number (optional)</label>
        <p className="hint" id={`${ids}-mobile-hint`}>
          For example 07700 900123. From outside the UK, start with + and the country code.
        </p>
        {err('mobile')}
        <input
          id={`${ids}-mobile`}
          type="tel"
          autoComplete="tel"
          value={mobile}
          onChange={(e) => setMobile(e.target.value)}
          aria-invalid={errors.mobile ? true : undefined}
          aria-describedby={described('mobile', `${ids}-mobile-hint`)}
        />
      </div>

      <div className="table-scroll" role="region" aria-labelledby={`${ids}-cap`} tabIndex={0}>
        <table className="matrix">
          <caption id={`${ids}-cap`}>How to send each alert</caption>
          <thead>
            <tr>
              <th scope="col">Alert</th>
              {CHANNELS.map((c) => (
                <th scope="col" key={c} id={`${ids}-col-${c}`}>
                  {CHANNEL_LABELS[c]}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {HOUSEHOLD_ALERT_TYPES.map((t) => (
              <tr key={t}>
                <th scope="row" id={`${ids}-row-${t}`}>
                  {ALERT_LABELS[t]}
                </th>
                {CHANNELS.map((c) => (
                  <td key={c}>
                    <input
                      type="checkbox"
                      id={`${ids}-${t}-${c}`}
                      checked={channels[t][c]}
                      onChange={(e) => setChannel(t, c, e.target.checked)}
                      aria-label={`${ALERT_LABELS[t]} by ${CHANNEL_LABELS[c]}`}
                    />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <fieldset
        className={`field${errors.quietHours ? ' field-error' : ''}`}
        aria-describedby={`${ids}-quiet-hint`}
      >
        <legend>Quiet hours</legend>
        <p className="hint" id={`${ids}-quiet-hint`}>
          No SMS or email alerts during these hours, except tampering and disconnection.
        </p>
        {err('quietHours')}
        <div className="check">
          <input
            type="radio"
            id={`${ids}-quiet-none`}
            name={`${ids}-quiet`}
            checked={!quiet}
            onChange={() => setQuiet(false)}
          />
          <label htmlFor={`${ids}-quiet-none`}>None</label>
        </div>
        <div className="check">
          <input
            type="radio"
            id={`${ids}-quiet-set`}
            name={`${ids}-quiet`}
            checked={quiet}
            onChange={() => setQuiet(true)}
          />
          <label htmlFor={`${ids}-quiet-set`}>Quiet from … to …</label>
        </div>
        <div className="input-row">
          <label htmlFor={`${ids}-quietHours`}>From</label>
          <input
            id={`${ids}-quietHours`}
            type="time"
            value={from}
            disabled={!quiet}
            onChange={(e) => setFrom(e.target.value)}
            aria-invalid={errors.quietHours ? true : undefined}
          />
          <label htmlFor={`${ids}-quiet-to`}>to</label>
          <input
            id={`${ids}-quiet-to`}
            type="time"
            value={to}
            disabled={!quiet}
            onChange={(e) => setTo(e.target.value)}
          />
        </div>
      </fieldset>

      {failure && failure.code !== 'VALIDATION' && <ErrorMessage error={failure} />}
      {failure?.code === 'VALIDATION' && (
        <div className="notice notice-error" role="alert">
          <p>
            Some details need correcting: {failure.issues.map((i) => i.message).join('; ') || failure.message}
          </p>
        </div>
      )}
      <div className="form-actions">
        <button type="submit" className="btn" aria-disabled={busy}>
          {busy ? 'Saving…' : 'Save profile'}
        </button>
        <p role="status" aria-live="polite" className="saved">
          {status && (
            <>
              <span aria-hidden="true">✓ </span>
              {status}
            </>
          )}
        </p>
      </div>
    </form>
  );
}

function PasswordForm() {
  const { me } = useSession();
  const username = me.user.consumerId ?? me.user.email ?? '';
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [status, setStatus] = useState('');
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const ids = useId();

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    const errs: Record<string, string> = {};
    if (!current) errs.current = 'Enter your current password.';
    if (next.length < MIN_PASSWORD) errs.next = `Use at least ${MIN_PASSWORD} characters.`;
    else if (next === current) errs.next = 'Choose a password different from your current one.';
    if (confirm !== next) errs.confirm = 'The two new passwords do not match.';
    setErrors(errs);
    setStatus('');
    setFailure(null);
    const first = Object.keys(errs)[0];
    if (first) {
      document.getElementById(`${ids}-${first}`)?.focus();
      return;
    }
    setBusy(true);
    const body: PasswordBody = { currentPassword: current, newPassword: next };
    api<void>('POST', '/api/me/password', body).then(
      () => {
        setBusy(false);
        setCurrent('');
        setNext('');
        setConfirm('');
        setStatus('Password changed.');
      },
      (err: unknown) => {
        setBusy(false);
        const e2 = err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err));
        if (e2.code === 'WRONG_PASSWORD' || e2.code === 'INVALID_CREDENTIALS') {
          setErrors({ current: 'Your current password is not correct.' });
          document.getElementById(`${ids}-current`)?.focus();
        } else if (e2.status === 429) {
          setErrors({
            current: `Too many attempts. Try again${e2.retryAfterS ? ` in ${e2.retryAfterS} s` : ' later'}.`,
          });
        } else if (e2.code === 'VALIDATION' && e2.issues.some((i) => i.path.endsWith('newPassword'))) {
          setErrors({ next: e2.issues.find((i) => i.path.endsWith('newPassword'))?.message ?? e2.message });
        } else setFailure(e2);
      },
    );
  };

  const field = (
    f: 'current' | 'next' | 'confirm',
    label: string,
    auto: string,
    value: string,
    set: (v: string) => void,
    hint?: string,
  ) => (
    <div className={`field${errors[f] ? ' field-error' : ''}`}>
      <label htmlFor={`${ids}-${f}`}>{label}</label>
      {hint && (
        <p className="hint" id={`${ids}-${f}-hint`}>
          {hint}
        </p>
      )}
      {errors[f] && (
        <p className="error-text" id={`${ids}-${f}-err`}>
          <span aria-hidden="true">⚠ </span>
          {errors[f]}
        </p>
      )}
      <input
        id={`${ids}-${f}`}
        type="password"
        autoComplete={auto}
        value={value}
        onChange={(e) => set(e.target.value)}
        aria-invalid={errors[f] ? true : undefined}
        aria-describedby={
          [errors[f] ? `${ids}-${f}-err` : '', hint ? `${ids}-${f}-hint` : ''].filter(Boolean).join(' ') ||
          undefined
        }
      />
    </div>
  );

  return (
    <form onSubmit={submit} noValidate className="card form" aria-labelledby={`${ids}-h`}>
      <h2 id={`${ids}-h`}>Change password</h2>
      {/* Lets password managers pair the new password with the account. */}
      <input type="text" name="username" autoComplete="username" hidden readOnly value={username} />
      {field('current', 'Current password', 'current-password', current, setCurrent)}
      {field(
        'next',
        'New password',
        'new-password',
        next,
        setNext,
        `At least ${MIN_PASSWORD} characters. A few unrelated words make a strong password.`,
      )}
      {field('confirm', 'Confirm new password', 'new-password', confirm, setConfirm)}
      {failure && <ErrorMessage error={failure} />}
      <div className="form-actions">
        <button type="submit" className="btn" aria-disabled={busy}>
          {busy ? 'Changing…' : 'Change password'}
        </button>
        <p role="status" aria-live="polite" className="saved">
          {status && (
            <>
              <span aria-hidden="true">✓ </span>
              {status}
            </>
          )}
        </p>
      </div>
    </form>
  );
}
