/**
 * Remote supply control on the meter page (disconnect / reconnect with a reason, the
 * approvals it waits for). The supply-control work fills this in; the meter page renders it.
 */
export function SupplyPanel(_props: { serial: string; relay: string | null; onChanged?: () => void }) {
  return null;
}
