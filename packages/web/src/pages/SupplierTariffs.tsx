import { useId, useState, type FormEvent, type ReactNode } from 'react';
import type {
  BulkAssign,
  BulkAssignBody,
  Tariff,
  TariffCreateBody,
  TariffStructureName,
  TariffVersionBody,
  Tariffs,
} from '@kilowire/contract';
import { TARIFF_STRUCTURES } from '@kilowire/contract/enums';
import { api, ApiError } from '../api.ts';
import { ErrorMessage, issuesByField, Loading, PageHeading, useApi } from '../common.tsx';
import {
  hours,
  longDay,
  parseMinorPrice,
  priceLines,
  priceToInput,
  STRUCTURE_LABELS,
  upcomingVersion,
} from '../tariffs.ts';

/** Supplier staff: their tariffs, new tariffs, price changes from a date, and moving meters onto a tariff. */
export function SupplierTariffsPage() {
  const list = useApi<Tariffs>('/api/tariffs');
  const [creating, setCreating] = useState(false);
  return (
    <>
      <PageHeading title="Tariffs">Tariffs</PageHeading>
      <p>
        Prices apply from local midnight in each meter&apos;s time zone. A price change reaches every meter on
        the tariff as a signed command, and each household is told by its chosen channels.
      </p>
      {creating ? (
        <CreateTariff
          onDone={() => {
            setCreating(false);
            list.reload();
          }}
          onCancel={() => setCreating(false)}
        />
      ) : (
        <p>
          <button type="button" className="btn" onClick={() => setCreating(true)}>
            New tariff
          </button>
        </p>
      )}
      {list.error ? (
        <ErrorMessage error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="tariffs" />
      ) : list.data.items.length === 0 ? (
        <p>No tariffs yet. Create one to start pricing your meters.</p>
      ) : (
        <ul className="tariff-list">
          {list.data.items.map((t) => (
            <li key={t.id}>
              <TariffCard t={t} all={list.data!.items} reload={list.reload} />
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

const tomorrow = (): string => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);

function TariffCard({ t, all, reload }: { t: Tariff; all: Tariff[]; reload: () => void }) {
  const [open, setOpen] = useState<'none' | 'version' | 'assign'>('none');
  const [done, setDone] = useState('');
  const hid = `t-${t.id}-h`;
  const latest = t.versions[t.versions.length - 1] ?? null;
  return (
    <section className="card" aria-labelledby={hid}>
      <h2 id={hid}>
        {t.name} <span className="muted">({t.code})</span>
        {!t.open && <span className="badge">Not open to households</span>}
      </h2>
      <p>
        {STRUCTURE_LABELS[t.structure]} · {t.meters ?? 0} {t.meters === 1 ? 'meter' : 'meters'} on it today
      </p>
      {t.current ? (
        <ul className="rates">
          {priceLines(t.current, t.currency).map((l) => (
            <li key={l}>{l}</li>
          ))}
        </ul>
      ) : (
        <p>No prices in force yet.</p>
      )}
      <Upcoming t={t} />
      <details>
        <summary>Price history ({t.versions.length})</summary>
        <div className="table-scroll" role="region" aria-label={`Price history of ${t.name}`} tabIndex={0}>
          <table className="data-table">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">From</th>
                <th scope="col">Prices</th>
              </tr>
            </thead>
            <tbody>
              {t.versions.map((v) => (
                <tr key={v.version}>
                  <th scope="row">{v.version}</th>
                  <td>{longDay(v.effectiveFrom)}</td>
                  <td>{priceLines(v, t.currency).slice(0, -1).join('; ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
      <p role="status" className="saved">
        {done && (
          <>
            <span aria-hidden="true">✓ </span>
            {done}
          </>
        )}
      </p>
      {open === 'version' && latest ? (
        <VersionForm
          tariff={t}
          initial={latest}
          onCancel={() => setOpen('none')}
          onDone={(msg) => {
            setOpen('none');
            setDone(msg);
            reload();
          }}
        />
      ) : open === 'assign' ? (
        <AssignForm
          tariff={t}
          all={all}
          onCancel={() => setOpen('none')}
          onDone={(msg) => {
            setOpen('none');
            setDone(msg);
            reload();
          }}
        />
      ) : (
        <div className="form-actions">
          <button type="button" className="btn btn-secondary" onClick={() => setOpen('version')}>
            Change prices<span className="visually-hidden"> of {t.name}</span>
          </button>
          <button type="button" className="btn btn-secondary" onClick={() => setOpen('assign')}>
            Move meters to this tariff<span className="visually-hidden"> ({t.name})</span>
          </button>
        </div>
      )}
    </section>
  );
}

interface PriceText {
  effectiveFrom: string;
  dayRate: string;
  nightRate: string;
  peakRate: string;
  nightWindows: string;
  peakWindows: string;
  exportRate: string;
  standing: string;
  vat: string;
}

function priceText(v: TariffVersionBody | null): PriceText {
  return {
    effectiveFrom: tomorrow(),
    dayRate: priceToInput(v?.dayRate ?? null),
    nightRate: priceToInput(v?.nightRate ?? null),
    peakRate: priceToInput(v?.peakRate ?? null),
    nightWindows: v ? hours(v.nightWindows).replace(/–/g, '-') : '00:30-07:30',
    peakWindows: v ? hours(v.peakWindows).replace(/–/g, '-') : '16:00-19:00',
    exportRate: priceToInput(v?.exportRate ?? null),
    standing: priceToInput(v?.standingMilliPerDay ?? null),
    vat: v ? String(v.vatBp / 100) : '5',
  };
}

function parseWindows(text: string): { from: string; to: string }[] | null {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const out: { from: string; to: string }[] = [];
  for (const p of parts) {
    const m = /^(\d{2}:\d{2})\s*[-–]\s*(\d{2}:\d{2})$/.exec(p);
    if (!m) return null;
    out.push({ from: m[1]!, to: m[2]! });
  }
  return out;
}

/** The prices typed, checked as far as the page can; the server checks the rest. */
function parsePrices(
  s: TariffStructureName,
  p: PriceText,
): { ok: true; body: TariffVersionBody } | { ok: false; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const price = (f: keyof PriceText, required: boolean): number | null => {
    if (p[f].trim() === '') {
      if (required) errors[f] = 'Enter a price, for example 24.5.';
      return null;
    }
    const v = parseMinorPrice(p[f]);
    if (v === null) errors[f] = 'Enter a price in pence with up to 3 decimals, for example 24.5.';
    return v;
  };
  const win = (f: 'nightWindows' | 'peakWindows', needed: boolean) => {
    if (!needed) return [];
    const w = parseWindows(p[f]);
    if (!w || w.length === 0) errors[f] = 'Enter hours like 00:30-07:30 (several separated by commas).';
    return w ?? [];
  };
  const vat = Number(p.vat.replace(',', '.'));
  if (!/^\d{1,3}(\.\d{1,2})?$/.test(p.vat.trim()) || vat > 100)
    errors.vat = 'Enter VAT as a percentage, for example 5.';
  if (!/^\d{4}-\d{2}-\d{2}$/.test(p.effectiveFrom))
    errors.effectiveFrom = 'Choose the first day of the prices.';
  const body: TariffVersionBody = {
    effectiveFrom: p.effectiveFrom,
    dayRate: price('dayRate', true) ?? 0,
    nightRate: s === 'flat' ? null : price('nightRate', true),
    peakRate: s === 'three_band' ? price('peakRate', true) : null,
    nightWindows: win('nightWindows', s !== 'flat'),
    peakWindows: win('peakWindows', s === 'three_band'),
    exportRate: price('exportRate', false),
    standingMilliPerDay: price('standing', true) ?? 0,
    vatBp: Math.round(vat * 100),
  };
  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, body };
}

function TextField(props: {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  error?: string | undefined;
  hint?: string;
  type?: string;
  suffix?: ReactNode;
  short?: boolean;
}) {
  const hintId = `${props.id}-hint`;
  const errId = `${props.id}-err`;
  return (
    <div className={`field${props.error ? ' field-error' : ''}`}>
      <label htmlFor={props.id}>{props.label}</label>
      {props.hint && (
        <p className="hint" id={hintId}>
          {props.hint}
        </p>
      )}
      {props.error && (
        <p className="error-text" id={errId}>
          <span aria-hidden="true">⚠ </span>
          {props.error}
        </p>
      )}
      <div className="input-row">
        <input
          id={props.id}
          type={props.type ?? 'text'}
          inputMode={props.type ? undefined : 'decimal'}
          className={props.short ? 'input-short' : undefined}
          value={props.value}
          onChange={(e) => props.onChange(e.target.value)}
          aria-invalid={props.error ? true : undefined}
          aria-describedby={
            [props.error ? errId : '', props.hint ? hintId : ''].filter(Boolean).join(' ') || undefined
          }
        />
        {props.suffix && <span aria-hidden="true">{props.suffix}</span>}
      </div>
    </div>
  );
}

function PriceFields({
  structure,
  p,
  set,
  errors,
  idp,
}: {
  structure: TariffStructureName;
  p: PriceText;
  set: (f: keyof PriceText, v: string) => void;
  errors: Record<string, string>;
  idp: string;
}) {
  return (
    <>
      <TextField
        id={`${idp}-from`}
        type="date"
        label="Prices apply from"
        hint="Local midnight at each meter; the earliest is tomorrow."
        value={p.effectiveFrom}
        onChange={(v) => set('effectiveFrom', v)}
        error={errors.effectiveFrom}
      />
      <TextField
        id={`${idp}-day`}
        short
        label={structure === 'flat' ? 'Unit rate (pence per kWh)' : 'Day rate (pence per kWh)'}
        value={p.dayRate}
        onChange={(v) => set('dayRate', v)}
        error={errors.dayRate}
        suffix="p/kWh"
      />
      {structure !== 'flat' && (
        <>
          <TextField
            id={`${idp}-night`}
            short
            label="Night rate (pence per kWh)"
            value={p.nightRate}
            onChange={(v) => set('nightRate', v)}
            error={errors.nightRate}
            suffix="p/kWh"
          />
          <TextField
            id={`${idp}-nightw`}
            label="Night hours (local time)"
            hint="For example 00:30-07:30."
            value={p.nightWindows}
            onChange={(v) => set('nightWindows', v)}
            error={errors.nightWindows}
          />
        </>
      )}
      {structure === 'three_band' && (
        <>
          <TextField
            id={`${idp}-peak`}
            short
            label="Peak rate (pence per kWh)"
            value={p.peakRate}
            onChange={(v) => set('peakRate', v)}
            error={errors.peakRate}
            suffix="p/kWh"
          />
          <TextField
            id={`${idp}-peakw`}
            label="Peak hours (local time)"
            hint="For example 16:00-19:00. Peak wins where it overlaps night."
            value={p.peakWindows}
            onChange={(v) => set('peakWindows', v)}
            error={errors.peakWindows}
          />
        </>
      )}
      <TextField
        id={`${idp}-standing`}
        short
        label="Standing charge (pence per day)"
        value={p.standing}
        onChange={(v) => set('standing', v)}
        error={errors.standing}
        suffix="p/day"
      />
      <TextField
        id={`${idp}-export`}
        short
        label="Export rate (pence per kWh, optional)"
        value={p.exportRate}
        onChange={(v) => set('exportRate', v)}
        error={errors.exportRate}
        suffix="p/kWh"
      />
      <TextField
        id={`${idp}-vat`}
        short
        label="VAT (%)"
        value={p.vat}
        onChange={(v) => set('vat', v)}
        error={errors.vat}
        suffix="%"
      />
    </>
  );
}

function useSubmit<T>() {
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const run = (p: Promise<T>, ok: (r: T) => void): void => {
    setBusy(true);
    setFailure(null);
    p.then(
      (r) => {
        setBusy(false);
        ok(r);
      },
      (e: unknown) => {
        setBusy(false);
        setFailure(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)));
      },
    );
  };
  return { busy, failure, run };
}

function VersionForm({
  tariff,
  initial,
  onDone,
  onCancel,
}: {
  tariff: Tariff;
  initial: TariffVersionBody;
  onDone: (msg: string) => void;
  onCancel: () => void;
}) {
  const idp = useId();
  const [p, setP] = useState(() => priceText(initial));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const { busy, failure, run } = useSubmit<BulkAssign & { version: number }>();
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    const r = parsePrices(tariff.structure, p);
    if (!r.ok) {
      setErrors(r.errors);
      return;
    }
    setErrors({});
    run(api('POST', `/api/tariffs/${tariff.id}/versions`, r.body), (res) =>
      onDone(
        `New prices from ${longDay(p.effectiveFrom)} saved for ${res.assigned.length} ${res.assigned.length === 1 ? 'meter' : 'meters'}; ${res.assigned.filter((x) => x.commandId).length} sent now, any others when their earlier change has begun.`,
      ),
    );
  };
  const serverErrors = issuesByField(failure);
  return (
    <form className="inline-form" onSubmit={submit} noValidate aria-label={`New prices for ${tariff.name}`}>
      <h3>New prices for {tariff.name}</h3>
      <PriceFields
        structure={tariff.structure}
        p={p}
        set={(f, v) => setP({ ...p, [f]: v })}
        errors={{ ...serverErrors, ...errors }}
        idp={idp}
      />
      {failure && <ErrorMessage error={failure} />}
      <div className="form-actions">
        <button type="submit" className="btn" aria-disabled={busy}>
          {busy ? 'Saving…' : 'Save and send to meters'}
        </button>
        <button type="button" className="btn btn-secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function AssignForm({
  tariff,
  all,
  onDone,
  onCancel,
}: {
  tariff: Tariff;
  all: Tariff[];
  onDone: (msg: string) => void;
  onCancel: () => void;
}) {
  const idp = useId();
  const [how, setHow] = useState<'serials' | 'tariff'>('serials');
  const [serials, setSerials] = useState('');
  const [fromTariff, setFromTariff] = useState(String(all.find((t) => t.id !== tariff.id)?.id ?? ''));
  const [from, setFrom] = useState('');
  const [error, setError] = useState<string | null>(null);
  const { busy, failure, run } = useSubmit<BulkAssign>();
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    const list = serials.split(/[\s,;]+/).filter(Boolean);
    if (how === 'serials' && list.length === 0) {
      setError('Enter at least one meter serial number.');
      return;
    }
    setError(null);
    const body: BulkAssignBody =
      how === 'serials'
        ? { serials: list, ...(from ? { from } : {}) }
        : { fromTariffId: Number(fromTariff), ...(from ? { from } : {}) };
    run(api('POST', `/api/tariffs/${tariff.id}/assign`, body), (r) =>
      onDone(
        r.assigned.length === 0
          ? 'No meters were on that tariff: nothing changed.'
          : `${r.assigned.length} ${r.assigned.length === 1 ? 'meter moves' : 'meters move'} to ${tariff.name} from ${longDay(r.assigned[0]!.from)}.`,
      ),
    );
  };
  return (
    <form className="inline-form" onSubmit={submit} noValidate aria-label={`Move meters to ${tariff.name}`}>
      <h3>Move meters to {tariff.name}</h3>
      <fieldset className="field">
        <legend>Which meters</legend>
        <div className="check">
          <input
            type="radio"
            id={`${idp}-s`}
            name={`${idp}-how`}
            checked={how === 'serials'}
            onChange={() => setHow('serials')}
          />
          <label htmlFor={`${idp}-s`}>These serial numbers</label>
        </div>
        <div className="check">
          <input
            type="radio"
            id={`${idp}-t`}
            name={`${idp}-how`}
            checked={how === 'tariff'}
            onChange={() => setHow('tariff')}
            disabled={all.length < 2}
          />
          <label htmlFor={`${idp}-t`}>Every meter now on another tariff</label>
        </div>
      </fieldset>
      {how === 'serials' ? (
        <div className={`field${error ? ' field-error' : ''}`}>
          <label htmlFor={`${idp}-serials`}>Serial numbers</label>
          <p className="hint" id={`${idp}-serials-hint`}>
            Separated by spaces, commas or new lines.
          </p>
          {error && (
            <p className="error-text" id={`${idp}-serials-err`}>
              <span aria-hidden="true">⚠ </span>
              {error}
            </p>
          )}
          <textarea
            id={`${idp}-serials`}
            rows={3}
            value={serials}
            onChange={(e) => setSerials(e.target.value)}
            aria-describedby={`${error ? `${idp}-serials-err ` : ''}${idp}-serials-hint`}
            aria-invalid={error ? true : undefined}
          />
        </div>
      ) : (
        <div className="field">
          <label htmlFor={`${idp}-from-tariff`}>Meters now on</label>
          <select
            id={`${idp}-from-tariff`}
            value={fromTariff}
            onChange={(e) => setFromTariff(e.target.value)}
          >
            {all
              .filter((t) => t.id !== tariff.id)
              .map((t) => (
                <option key={t.id} value={t.id}>
                  {t.name} ({t.meters ?? 0})
                </option>
              ))}
          </select>
        </div>
      )}
      <TextField
        id={`${idp}-date`}
        type="date"
        label="From (optional)"
        hint="Default: each meter's next local midnight."
        value={from}
        onChange={setFrom}
      />
      {failure && <ErrorMessage error={failure} />}
      <div className="form-actions">
        <button type="submit" className="btn" aria-disabled={busy}>
          {busy ? 'Moving…' : 'Move meters'}
        </button>
        <button type="button" className="btn btn-secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function CreateTariff({ onDone, onCancel }: { onDone: () => void; onCancel: () => void }) {
  const idp = useId();
  const [code, setCode] = useState('');
  const [name, setName] = useState('');
  const [structure, setStructure] = useState<TariffStructureName>('flat');
  const [open, setOpen] = useState(true);
  const [p, setP] = useState(() => priceText(null));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const { busy, failure, run } = useSubmit<Tariff>();
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    const r = parsePrices(structure, p);
    const errs: Record<string, string> = r.ok ? {} : { ...r.errors };
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(code))
      errs.code = 'Letters, digits, dots, dashes or underscores (up to 64).';
    if (!name.trim()) errs.name = 'Give the tariff a name households will recognise.';
    setErrors(errs);
    if (!r.ok || Object.keys(errs).length) return;
    const body: TariffCreateBody = {
      code,
      name: name.trim(),
      currency: 'GBP',
      structure,
      open,
      version: r.body,
    };
    run(api('POST', '/api/tariffs', body), onDone);
  };
  const server = issuesByField(failure);
  return (
    <form className="card" onSubmit={submit} noValidate aria-labelledby={`${idp}-h`}>
      <h2 id={`${idp}-h`}>New tariff</h2>
      <TextField
        id={`${idp}-name`}
        label="Name"
        value={name}
        onChange={setName}
        error={errors.name ?? server.name}
      />
      <TextField
        id={`${idp}-code`}
        label="Code"
        hint="Sent to meters; cannot be changed later. For example FLAT-2027."
        value={code}
        onChange={setCode}
        error={errors.code ?? server.code}
      />
      <div className="field">
        <label htmlFor={`${idp}-structure`}>Structure</label>
        <select
          id={`${idp}-structure`}
          value={structure}
          onChange={(e) => setStructure(e.target.value as TariffStructureName)}
        >
          {TARIFF_STRUCTURES.map((s) => (
            <option key={s} value={s}>
              {STRUCTURE_LABELS[s]}
            </option>
          ))}
        </select>
      </div>
      <div className="check">
        <input
          id={`${idp}-open`}
          type="checkbox"
          checked={open}
          onChange={(e) => setOpen(e.target.checked)}
        />
        <label htmlFor={`${idp}-open`}>Open to households (they can compare it and ask for it)</label>
      </div>
      <PriceFields
        structure={structure}
        p={p}
        set={(f, v) => setP({ ...p, [f]: v })}
        errors={errors}
        idp={idp}
      />
      {failure && <ErrorMessage error={failure} />}
      <div className="form-actions">
        <button type="submit" className="btn" aria-disabled={busy}>
          {busy ? 'Creating…' : 'Create tariff'}
        </button>
        <button type="button" className="btn btn-secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** A price change already decided: what changes and from when. */
export function Upcoming({ t }: { t: Tariff }) {
  const next = upcomingVersion(t.versions, t.current);
  if (!next) return null;
  return (
    <div className="notice">
      <p>
        <strong>New prices from {longDay(next.effectiveFrom)}:</strong>
      </p>
      <ul className="rates">
        {priceLines(next, t.currency).map((l) => (
          <li key={l}>{l}</li>
        ))}
      </ul>
    </div>
  );
}
