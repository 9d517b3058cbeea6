import type { IncidentKind, IncidentStatus, OutageSource, SlaState } from '@kilowire/contract';
import { Badge, type Tone } from '../../ui/index.ts';

/** The control room reads times in the operator's zone (the UK's for now, as the other staff pages). */
export const NETWORK_TZ = 'Europe/London';

export const STATUS_LABEL: Record<IncidentStatus, string> = {
  detected: 'Detected',
  acknowledged: 'Acknowledged',
  dispatched: 'Crew dispatched',
  restored: 'Restored',
  closed: 'Closed',
};
const STATUS_TONE: Record<IncidentStatus, Tone> = {
  detected: 'bad',
  acknowledged: 'warn',
  dispatched: 'info',
  restored: 'good',
  closed: 'neutral',
};
export const SLA_LABEL: Record<SlaState, string> = {
  ok: 'On target',
  at_risk: 'At risk',
  breached: 'Breached',
};
const SLA_TONE: Record<SlaState, Tone> = { ok: 'good', at_risk: 'warn', breached: 'bad' };
export const KIND_LABEL: Record<IncidentKind, string> = { feeder: 'Feeder', single: 'Single household' };
export const SOURCE_LABEL: Record<OutageSource, string> = { last_gasp: 'Last gasp', silent: 'Went silent' };

export function IncidentStatusBadge({ status }: { status: IncidentStatus }) {
  return <Badge tone={STATUS_TONE[status]}>{STATUS_LABEL[status]}</Badge>;
}

/** The SLA state; for an incident no longer open the clock has stopped, which the word says. */
export function SlaBadge({ state, open = true }: { state: SlaState; open?: boolean }) {
  if (!open && state === 'ok') return <Badge tone="neutral">Met</Badge>;
  return <Badge tone={SLA_TONE[state]}>{SLA_LABEL[state]}</Badge>;
}

export const isOpen = (s: IncidentStatus) => s === 'detected' || s === 'acknowledged' || s === 'dispatched';

/** "2 h 5 min", "45 min", "30 s" — durations the control room reads at a glance. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} days ${h % 24} h`;
}
