import type { ReactNode } from 'react';
import { PageHeading } from '../common.tsx';

/**
 * The top of a page: its h1 (which sets the document title and takes focus after a
 * navigation), a line saying what the page is for, and the page's main actions on the right
 * (under the title on a phone).
 */
export function PageHeader({
  title,
  heading,
  description,
  actions,
}: {
  /** Document title, "<title> – Kilowire". */
  title: string;
  /** The visible h1; defaults to `title`. */
  heading?: ReactNode;
  description?: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <div className="page-header">
      <div className="page-header-text">
        <PageHeading title={title}>{heading ?? title}</PageHeading>
        {description ? <p className="muted">{description}</p> : null}
      </div>
      {actions ? <div className="page-header-actions">{actions}</div> : null}
    </div>
  );
}
