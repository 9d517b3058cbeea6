/**
 * The fleet table's bulk action (disconnect / reconnect the selected meters). The
 * supply-control work fills this in; the fleet page renders it with the selected serials.
 */
export function BulkSupplyButton(_props: { serials: string[]; onDone?: () => void }) {
  return null;
}
