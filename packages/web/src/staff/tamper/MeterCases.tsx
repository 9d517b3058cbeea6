import type { MeterTamperCases } from '@kilowire/contract';
import { ErrorMessage, Loading, useApi } from '../../common.tsx';
import { DataTable, EmptyState } from '../../ui/index.ts';
import { caseColumns } from './TamperCases.tsx';
import './tamper.css';

/** A meter's tamper cases on the meter page, newest first, each linking to its case page. */
export function MeterCases(props: { serial: string }) {
  const cases = useApi<MeterTamperCases>(`/api/meters/${encodeURIComponent(props.serial)}/tamper-cases`);
  return (
    <section className="card cases-panel" aria-labelledby="meter-cases-h">
      <h2 id="meter-cases-h">Tamper cases</h2>
      {cases.error && <ErrorMessage error={cases.error} retry={cases.reload} />}
      {cases.loading && !cases.data && <Loading what="tamper cases" />}
      {cases.data && (
        <DataTable
          caption={`Tamper cases of meter ${props.serial}, newest first`}
          columns={caseColumns.filter((c) => c.id !== 'meter')}
          rows={cases.data.items}
          rowKey={(r) => String(r.id)}
          empty={<EmptyState title="No tamper cases">This meter has never reported tampering.</EmptyState>}
        />
      )}
    </section>
  );
}
