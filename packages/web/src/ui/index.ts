// The design system's building blocks: every page of the three portals uses these.
export { Badge, type Tone } from './Badge.tsx';
export { ConfirmDialog } from './ConfirmDialog.tsx';
export { DataTable, type ColumnDef, type SortingState } from './DataTable.tsx';
export { EmptyState } from './EmptyState.tsx';
export { PageHeader } from './PageHeader.tsx';
export { Timeline, type TimelineEntry } from './Timeline.tsx';
export { ToastProvider, useToast } from './Toast.tsx';
