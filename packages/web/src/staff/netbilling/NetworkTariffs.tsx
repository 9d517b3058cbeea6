import { useId, useState, type FormEvent } from 'react';
import type {
  NetworkBandBody,
  NetworkTariff,
  NetworkTariffsResponse,
  NetworkTariffVersionView,
  NetworkVersionBody,
} from '@kilowire/contract';
import { api, ApiError } from '../../api.ts';
import { ErrorMessage, Loading, useApi, useSession } from '../../common.tsx';
import { Badge, DataTable, EmptyState, PageHeader, useToast, type ColumnDef } from '../../ui/index.ts';
import { asApiError } from '../admin/shared.tsx';
import { milliPence, parseMilli } from './words.ts';
import './netbilling.css';

/** The version in force today (versions ascending by date). */
function current(t: NetworkTariff): NetworkTariffVersionView | null {
  const today = new Date().toISOString().slice(0, 10);
  return t.versions.filter((v) => v.effectiveFrom <= today).at(-1) ?? null;
}

function windowsText(b: NetworkTariffVersionView['bands'][number]): string {
  if (!b.windows.length) return 'all other times';
  return `${b.windows.map((w) => `${w.from}–${w.to}`).join(', ')}${b.weekdaysOnly ? ', Mon–Fri' : ''}`;
}

const versionColumns: ColumnDef<NetworkTariffVersionView, unknown>[] = [
  { id: 'v', header: 'Version', accessorKey: 'version' },
  { id: 'from', header: 'From', accessorKey: 'effectiveFrom' },
  {
    id: 'bands',
    header: 'Per kWh',
    enableSorting: false,
    cell: ({ row }) => (
      <ul className="nb-bands">
        {row.original.bands.map((b) => (
          <li key={b.code}>
            <strong>{b.name}</strong> {milliPence(b.rateMilli)}{' '}
            <span className="muted">({windowsText(b)})</span>
          </li>
        ))}
      </ul>
    ),
  },
  {
    id: 'fixed',
    header: 'Per meter per day',
    accessorKey: 'fixedMilliPerDay',
    cell: ({ row }) => milliPence(row.original.fixedMilliPerDay),
  },
  { id: 'vat', header: 'VAT', accessorKey: 'vatBp', cell: ({ row }) => `${row.original.vatBp / 100}%` },
];

/**
 * #9 Network tariffs: what the operator charges suppliers per kWh by time band and per meter
 * per day, their price versions and which area each prices. Operator admins create tariffs,
 * add versions and assign areas; other operator staff read them.
 */
export default function NetworkTariffsPage() {
  const { me } = useSession();
  const manage = me.capabilities.includes('network_tariffs.manage');
  const list = useApi<NetworkTariffsResponse>('/api/network-tariffs');
  const data = list.data;
  return (
    <>
      <PageHeader
        title="Network tariffs"
        description="Use-of-system charges to suppliers: a rate per kWh for each time band of local clock time, and a fixed charge per meter per day. A price change is a new version from a day on."
      />
      {list.error && <ErrorMessage error={list.error} retry={list.reload} />}
      {list.loading && !data && <Loading what="network tariffs" />}
      {data && (
        <section aria-labelledby="nt-areas-h">
          <h2 id="nt-areas-h">Areas</h2>
          <DataTable
            caption="Your areas and the tariff pricing each today"
            columns={[
              {
                id: 'id',
                header: 'Area',
                accessorKey: 'id',
                cell: ({ row }) => `${row.original.name} (${row.original.id})`,
              },
              { id: 'tz', header: 'Time zone', accessorKey: 'tz' },
              { id: 'meters', header: 'Meters', accessorKey: 'meters' },
              {
                id: 'tariff',
                header: 'Tariff today',
                accessorKey: 'tariffCode',
                cell: ({ row }) =>
                  row.original.tariffCode ? (
                    row.original.tariffCode
                  ) : (
                    <Badge tone="warn">No tariff: cannot be invoiced</Badge>
                  ),
              },
            ]}
            rows={data.areas}
            rowKey={(a) => a.id}
            empty={<EmptyState title="No areas">Areas are set up by the platform administrator.</EmptyState>}
          />
        </section>
      )}
      {data && (
        <section aria-labelledby="nt-list-h">
          <h2 id="nt-list-h">Tariffs</h2>
          {data.items.length === 0 && (
            <EmptyState title="No network tariffs yet">
              {manage
                ? 'Create one below, then assign it to your areas.'
                : 'Your operator admin creates them.'}
            </EmptyState>
          )}
          {data.items.map((t) => {
            const cur = current(t);
            return (
              <article key={t.id} className="card nb-tariff" aria-labelledby={`nt-${t.id}`}>
                <h3 id={`nt-${t.id}`}>
                  {t.name} <span className="muted">{t.code}</span>
                </h3>
                <p className="muted">
                  {cur ? `Version ${cur.version} in force` : 'Not in force yet'} ·{' '}
                  {t.areas.length
                    ? `prices ${t.areas.map((a) => `${a.areaId} from ${a.fromDay}`).join(', ')}`
                    : 'no area assigned'}
                </p>
                <DataTable
                  caption={`Price versions of ${t.name}`}
                  columns={versionColumns}
                  rows={t.versions}
                  rowKey={(v) => String(v.version)}
                />
              </article>
            );
          })}
        </section>
      )}
      {manage && data && (
        <section aria-labelledby="nt-manage-h">
          <h2 id="nt-manage-h">Change</h2>
          <CreateTariff onDone={list.reload} first={data.items.length === 0} />
          {data.items.length > 0 && <AddVersion tariffs={data.items} onDone={list.reload} />}
          {data.items.length > 0 && data.areas.length > 0 && (
            <AssignArea tariffs={data.items} areas={data.areas} onDone={list.reload} />
          )}
        </section>
      )}
    </>
  );
}

interface BandDraft {
  code: string;
  name: string;
  rate: string;
  windows: string;
  weekdaysOnly: boolean;
}
const DEFAULT_BANDS: BandDraft[] = [
  { code: 'red', name: 'Red', rate: '9.5', windows: '16:00-19:00', weekdaysOnly: true },
  { code: 'amber', name: 'Amber', rate: '3.2', windows: '07:00-16:00, 19:00-23:00', weekdaysOnly: false },
  { code: 'green', name: 'Green', rate: '0.9', windows: '', weekdaysOnly: false },
];

/** The drafted version as the API's body, or the first problem in words. */
function toVersion(
  from: string,
  bands: BandDraft[],
  fixed: string,
  vat: string,
): { ok: true; body: NetworkVersionBody } | { ok: false; message: string } {
  const out: NetworkBandBody[] = [];
  for (const b of bands) {
    const rate = parseMilli(b.rate);
    if (rate === null)
      return { ok: false, message: `${b.name || 'A band'}: enter the rate in pence, e.g. 4.2` };
    const windows = b.windows
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => {
        const [f, t] = s.split(/\s*[-–]\s*/) as [string, string?];
        return { from: f, to: t ?? '' };
      });
    out.push({
      code: b.code.trim(),
      name: b.name.trim(),
      rateMilli: rate,
      windows,
      weekdaysOnly: b.weekdaysOnly,
    });
  }
  const fixedMilli = parseMilli(fixed);
  if (fixedMilli === null) return { ok: false, message: 'Enter the fixed charge in pence per meter per day' };
  const vatN = Number(vat);
  if (!/^\d{1,3}(\.\d{1,2})?$/.test(vat.trim()) || vatN > 100)
    return { ok: false, message: 'Enter VAT in per cent' };
  return {
    ok: true,
    body: { effectiveFrom: from, bands: out, fixedMilliPerDay: fixedMilli, vatBp: Math.round(vatN * 100) },
  };
}

function VersionFields({
  idp,
  from,
  setFrom,
  bands,
  setBands,
  fixed,
  setFixed,
  vat,
  setVat,
}: {
  idp: string;
  from: string;
  setFrom: (v: string) => void;
  bands: BandDraft[];
  setBands: (b: BandDraft[]) => void;
  fixed: string;
  setFixed: (v: string) => void;
  vat: string;
  setVat: (v: string) => void;
}) {
  const set = (i: number, patch: Partial<BandDraft>) =>
    setBands(bands.map((b, j) => (j === i ? { ...b, ...patch } : b)));
  return (
    <>
      <div className="nb-grid">
        <div className="field">
          <label htmlFor={`${idp}-from`}>Prices from (local day)</label>
          <input id={`${idp}-from`} type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${idp}-fixed`}>Fixed charge (p per meter per day)</label>
          <input
            id={`${idp}-fixed`}
            inputMode="decimal"
            value={fixed}
            onChange={(e) => setFixed(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor={`${idp}-vat`}>VAT (%)</label>
          <input id={`${idp}-vat`} inputMode="decimal" value={vat} onChange={(e) => setVat(e.target.value)} />
        </div>
      </div>
      <fieldset className="nb-bandset">
        <legend>
          Time bands (a half-hour takes the first band whose times hold it; leave one band’s times empty for
          the rest of the day)
        </legend>
        {bands.map((b, i) => (
          <div key={i} className="nb-band">
            <div className="field">
              <label htmlFor={`${idp}-b${i}-name`}>Band name</label>
              <input
                id={`${idp}-b${i}-name`}
                value={b.name}
                onChange={(e) =>
                  set(i, {
                    name: e.target.value,
                    code: e.target.value
                      .toLowerCase()
                      .replace(/[^a-z0-9_-]/g, '')
                      .slice(0, 16),
                  })
                }
              />
            </div>
            <div className="field">
              <label htmlFor={`${idp}-b${i}-rate`}>Rate (p/kWh)</label>
              <input
                id={`${idp}-b${i}-rate`}
                inputMode="decimal"
                value={b.rate}
                onChange={(e) => set(i, { rate: e.target.value })}
              />
            </div>
            <div className="field">
              <label htmlFor={`${idp}-b${i}-win`}>Local times</label>
              <input
                id={`${idp}-b${i}-win`}
                placeholder="e.g. 16:00-19:00"
                value={b.windows}
                onChange={(e) => set(i, { windows: e.target.value })}
              />
            </div>
            <div className="field field-check">
              <input
                id={`${idp}-b${i}-wd`}
                type="checkbox"
                checked={b.weekdaysOnly}
                onChange={(e) => set(i, { weekdaysOnly: e.target.checked })}
              />
              <label htmlFor={`${idp}-b${i}-wd`}>Weekdays only</label>
            </div>
          </div>
        ))}
        <div className="nb-band-actions">
          {bands.length < 6 && (
            <button
              type="button"
              className="btn btn-small btn-secondary"
              onClick={() =>
                setBands([
                  ...bands,
                  {
                    code: `band${bands.length + 1}`,
                    name: `Band ${bands.length + 1}`,
                    rate: '',
                    windows: '',
                    weekdaysOnly: false,
                  },
                ])
              }
            >
              Add a band
            </button>
          )}
          {bands.length > 1 && (
            <button
              type="button"
              className="btn btn-small btn-secondary"
              onClick={() => setBands(bands.slice(0, -1))}
            >
              Remove the last band
            </button>
          )}
        </div>
      </fieldset>
    </>
  );
}

function useVersionDraft() {
  const [from, setFrom] = useState(() => {
    const d = new Date();
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString().slice(0, 10);
  });
  const [bands, setBands] = useState<BandDraft[]>(DEFAULT_BANDS);
  const [fixed, setFixed] = useState('12.5');
  const [vat, setVat] = useState('20');
  return { from, setFrom, bands, setBands, fixed, setFixed, vat, setVat };
}

function Problem({ error, local }: { error: ApiError | null; local: string | null }) {
  if (local)
    return (
      <div className="notice notice-error" role="alert">
        <p>{local}</p>
      </div>
    );
  if (!error) return null;
  const issues = error.issues?.map((i) => i.message).join('; ');
  return (
    <div className="notice notice-error" role="alert">
      <p>{issues ? `Please check: ${issues}` : error.message}</p>
    </div>
  );
}

function CreateTariff({ onDone, first }: { onDone: () => void; first: boolean }) {
  const id = useId();
  const toast = useToast();
  const v = useVersionDraft();
  const [code, setCode] = useState('');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [local, setLocal] = useState<string | null>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const body = toVersion(v.from, v.bands, v.fixed, v.vat);
    if (!body.ok) return setLocal(body.message);
    setLocal(null);
    setBusy(true);
    setError(null);
    api<NetworkTariff>('POST', '/api/network-tariffs', { code, name, version: body.body }).then(
      (t) => {
        setBusy(false);
        toast.show(`Tariff ${t.code} created`);
        setCode('');
        setName('');
        onDone();
      },
      (err: unknown) => {
        setBusy(false);
        setError(asApiError(err));
      },
    );
  };
  return (
    <details className="card nb-disclosure" open={first}>
      <summary>Create a tariff</summary>
      <form onSubmit={submit} noValidate aria-label="Create a tariff">
        <div className="nb-grid">
          <div className="field">
            <label htmlFor={`${id}-code`}>Code</label>
            <input id={`${id}-code`} value={code} maxLength={64} onChange={(e) => setCode(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor={`${id}-name`}>Name</label>
            <input id={`${id}-name`} value={name} maxLength={80} onChange={(e) => setName(e.target.value)} />
          </div>
        </div>
        <VersionFields idp={id} {...v} />
        <Problem error={error} local={local} />
        <div className="form-actions">
          <button type="submit" className="btn" disabled={busy || !code.trim() || !name.trim()}>
            {busy ? 'Creating…' : 'Create tariff'}
          </button>
        </div>
      </form>
    </details>
  );
}

function AddVersion({ tariffs, onDone }: { tariffs: NetworkTariff[]; onDone: () => void }) {
  const id = useId();
  const toast = useToast();
  const v = useVersionDraft();
  const [tariffId, setTariffId] = useState(String(tariffs[0]!.id));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [local, setLocal] = useState<string | null>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const body = toVersion(v.from, v.bands, v.fixed, v.vat);
    if (!body.ok) return setLocal(body.message);
    setLocal(null);
    setBusy(true);
    setError(null);
    api<NetworkTariff>('POST', `/api/network-tariffs/${tariffId}/versions`, body.body).then(
      (t) => {
        setBusy(false);
        toast.show(`${t.code}: version ${t.versions.at(-1)?.version} from ${v.from}`);
        onDone();
      },
      (err: unknown) => {
        setBusy(false);
        setError(asApiError(err));
      },
    );
  };
  return (
    <details className="card nb-disclosure">
      <summary>New prices</summary>
      <form onSubmit={submit} noValidate aria-label="New prices">
        <div className="field">
          <label htmlFor={`${id}-t`}>Tariff</label>
          <select id={`${id}-t`} value={tariffId} onChange={(e) => setTariffId(e.target.value)}>
            {tariffs.map((t) => (
              <option key={t.id} value={String(t.id)}>
                {t.name} ({t.code})
              </option>
            ))}
          </select>
        </div>
        <VersionFields idp={id} {...v} />
        <Problem error={error} local={local} />
        <div className="form-actions">
          <button type="submit" className="btn" disabled={busy}>
            {busy ? 'Saving…' : 'Add version'}
          </button>
        </div>
      </form>
    </details>
  );
}

function AssignArea({
  tariffs,
  areas,
  onDone,
}: {
  tariffs: NetworkTariff[];
  areas: NetworkTariffsResponse['areas'];
  onDone: () => void;
}) {
  const id = useId();
  const toast = useToast();
  const [tariffId, setTariffId] = useState(String(tariffs[0]!.id));
  const [areaId, setAreaId] = useState(areas[0]!.id);
  const [fromDay, setFromDay] = useState(() => new Date().toISOString().slice(0, 8) + '01');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    api<NetworkTariff>('POST', `/api/network-tariffs/${tariffId}/areas`, { areaId, fromDay }).then(
      (t) => {
        setBusy(false);
        toast.show(`${t.code} prices area ${areaId} from ${fromDay}`);
        onDone();
      },
      (err: unknown) => {
        setBusy(false);
        setError(asApiError(err));
      },
    );
  };
  return (
    <details className="card nb-disclosure">
      <summary>Assign to an area</summary>
      <form onSubmit={submit} noValidate aria-label="Assign to an area">
        <div className="nb-grid">
          <div className="field">
            <label htmlFor={`${id}-t`}>Tariff</label>
            <select id={`${id}-t`} value={tariffId} onChange={(e) => setTariffId(e.target.value)}>
              {tariffs.map((t) => (
                <option key={t.id} value={String(t.id)}>
                  {t.name} ({t.code})
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={`${id}-a`}>Area</label>
            <select id={`${id}-a`} value={areaId} onChange={(e) => setAreaId(e.target.value)}>
              {areas.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name} ({a.id})
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={`${id}-d`}>From (local day)</label>
            <input id={`${id}-d`} type="date" value={fromDay} onChange={(e) => setFromDay(e.target.value)} />
          </div>
        </div>
        <Problem error={error} local={null} />
        <div className="form-actions">
          <button type="submit" className="btn" disabled={busy}>
            {busy ? 'Assigning…' : 'Assign'}
          </button>
        </div>
      </form>
    </details>
  );
}
