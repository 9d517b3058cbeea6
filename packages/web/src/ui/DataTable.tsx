import {
  flexRender,
  getCoreRowModel,
  getSortedRowModel,
  useReactTable,
  type ColumnDef,
  type OnChangeFn,
  type SortingState,
} from '@tanstack/react-table';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useRef, useState, type ReactNode } from 'react';

export type { ColumnDef, SortingState } from '@tanstack/react-table';

/**
 * Every table of the portals: TanStack Table for columns and sorting (no hand-written
 * sorting), a caption for screen readers, and two modes:
 * - server-driven (`sorting` + `onSortingChange`): the page asks the API for the order and the
 *   page of rows, so a 100,000-meter fleet never reaches the browser whole;
 * - local: sorting in the browser, and with `virtualise` only the rows in view are rendered
 *   (long lists such as an audit export preview or a meter's events).
 */
export interface DataTableProps<T> {
  caption: string;
  /** Show the caption to sighted users too (otherwise it is for screen readers only). */
  showCaption?: boolean;
  // Each column's value type differs; TanStack's own examples type the list this way.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  columns: ColumnDef<T, any>[];
  rows: T[];
  rowKey: (row: T) => string;
  /** Server-side sorting: controlled state; omitted = sorted in the browser. */
  sorting?: SortingState;
  onSortingChange?: OnChangeFn<SortingState>;
  /** Render only the rows in view (local mode, long lists). Height of the scroll area in px. */
  virtualise?: { height: number; rowHeight: number };
  /** What to show when there are no rows (an EmptyState). */
  empty?: ReactNode;
  /** Called when a row is activated (click or Enter on its first cell's link is better for a11y). */
  onRowClick?: (row: T) => void;
  /** Rows being replaced by a new page: dimmed, announced. */
  busy?: boolean;
}

export function DataTable<T>(p: DataTableProps<T>) {
  const server = p.onSortingChange !== undefined;
  const [localSorting, setLocalSorting] = useState<SortingState>([]);
  const table = useReactTable({
    data: p.rows,
    columns: p.columns,
    getRowId: p.rowKey,
    state: { sorting: server ? (p.sorting ?? []) : localSorting },
    onSortingChange: server ? p.onSortingChange : setLocalSorting,
    manualSorting: server,
    enableSortingRemoval: false,
    getCoreRowModel: getCoreRowModel(),
    ...(server ? {} : { getSortedRowModel: getSortedRowModel() }),
  });
  const scrollRef = useRef<HTMLDivElement>(null);
  // Wider than its frame (a phone, many columns): say so under the table, or the columns
  // off to the right look absent.
  const [overflows, setOverflows] = useState(false);
  useEffect(() => {
    const el = scrollRef.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const measure = (): void => setOverflows(el.scrollWidth > el.clientWidth + 1);
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    if (el.firstElementChild) ro.observe(el.firstElementChild);
    return () => ro.disconnect();
  }, [p.rows.length]);
  const rows = table.getRowModel().rows;
  const virtualizer = useVirtualizer({
    count: p.virtualise ? rows.length : 0,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => p.virtualise?.rowHeight ?? 40,
    overscan: 10,
  });

  if (p.rows.length === 0 && p.empty) return <>{p.empty}</>;

  const virtual = p.virtualise ? virtualizer.getVirtualItems() : null;
  const padTop = virtual && virtual.length ? virtual[0]!.start : 0;
  const padBottom =
    virtual && virtual.length ? virtualizer.getTotalSize() - virtual[virtual.length - 1]!.end : 0;
  const shown = virtual ? virtual.map((v) => rows[v.index]!) : rows;
  const colCount = table.getVisibleLeafColumns().length;

  return (
    <>
      <div
        className="table-scroll data-table"
        ref={scrollRef}
        style={p.virtualise ? { maxHeight: p.virtualise.height, overflowY: 'auto' } : undefined}
        aria-busy={p.busy || undefined}
        tabIndex={0}
        role="region"
        aria-label={p.caption}
      >
        <table className={p.busy ? 'is-busy' : undefined}>
          <caption className={p.showCaption ? undefined : 'visually-hidden'}>{p.caption}</caption>
          <thead>
            {table.getHeaderGroups().map((hg) => (
              <tr key={hg.id}>
                {hg.headers.map((h) => {
                  const sorted = h.column.getIsSorted();
                  const sortable = h.column.getCanSort();
                  const label = h.isPlaceholder
                    ? null
                    : flexRender(h.column.columnDef.header, h.getContext());
                  return (
                    <th
                      key={h.id}
                      scope="col"
                      aria-sort={
                        sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : undefined
                      }
                    >
                      {sortable ? (
                        <button
                          type="button"
                          className="sort-button"
                          onClick={h.column.getToggleSortingHandler()}
                        >
                          {label}
                          <span aria-hidden="true" className="sort-mark">
                            {sorted === 'asc' ? '▲' : sorted === 'desc' ? '▼' : '↕'}
                          </span>
                        </button>
                      ) : (
                        label
                      )}
                    </th>
                  );
                })}
              </tr>
            ))}
          </thead>
          <tbody>
            {padTop > 0 && (
              <tr aria-hidden="true">
                <td colSpan={colCount} style={{ height: padTop, padding: 0, border: 0 }} />
              </tr>
            )}
            {shown.map((r) => (
              <tr
                key={r.id}
                className={p.onRowClick ? 'clickable' : undefined}
                onClick={p.onRowClick ? () => p.onRowClick!(r.original) : undefined}
              >
                {r.getVisibleCells().map((c) => (
                  <td key={c.id}>{flexRender(c.column.columnDef.cell, c.getContext())}</td>
                ))}
              </tr>
            ))}
            {padBottom > 0 && (
              <tr aria-hidden="true">
                <td colSpan={colCount} style={{ height: padBottom, padding: 0, border: 0 }} />
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {overflows && (
        <p className="table-hint">
          <span aria-hidden="true">⟷ </span>Scroll the table sideways to see every column.
        </p>
      )}
    </>
  );
}
