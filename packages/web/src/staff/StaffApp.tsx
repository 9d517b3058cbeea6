import { Suspense, useEffect, useState } from 'react';
import { Loading, useSession } from '../common.tsx';
import { Link } from '../router.tsx';
import { ToastProvider } from '../ui/index.ts';
import { allowed, matchPage, STAFF_PAGES } from './routes.tsx';

/**
 * The staff portals (supplier, administrator, network operator): side navigation built from
 * the page table, each page loaded on first visit. Loaded itself only after a staff user signs
 * in. Below 64rem the side navigation folds behind a Menu button (closed again on navigation).
 */
export default function StaffApp({ path }: { path: string }) {
  const { me } = useSession();
  const role = me.user.role;
  const caps = me.capabilities;
  const visible = STAFF_PAGES.filter((p) => p.nav && allowed(p, role, caps));
  const sections = [...new Set(visible.map((p) => p.nav!.section))];
  const first = visible[0];
  const target = path === '/' && first && typeof first.path === 'string' ? first.path : path;
  const hit = matchPage(target, role, caps);
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [path]);
  return (
    <ToastProvider>
      <div className="staff-layout">
        <button
          type="button"
          className="menu-button side-nav-toggle"
          aria-expanded={open}
          aria-controls="side-nav"
          onClick={() => setOpen((o) => !o)}
        >
          <span className="menu-icon" aria-hidden="true" />
          Menu
        </button>
        <nav id="side-nav" className={open ? 'side-nav is-open' : 'side-nav'} aria-label="Console">
          {sections.map((s) => (
            <div key={s} className="side-section">
              <p className="side-heading">{s}</p>
              <ul>
                {visible
                  .filter((p) => p.nav!.section === s)
                  .map((p) => (
                    <li key={String(p.path)}>
                      <Link href={String(p.path)} aria-current={hit?.page === p ? 'page' : undefined}>
                        {p.nav!.label}
                      </Link>
                    </li>
                  ))}
              </ul>
            </div>
          ))}
        </nav>
        <div className="staff-main">
          {hit ? (
            <Suspense fallback={<Loading what="page" />}>
              <hit.page.component {...(hit.param !== undefined ? { param: hit.param } : {})} />
            </Suspense>
          ) : (
            <>
              <h1>Page not found</h1>
              <p>
                There is no page at this address for your role. <Link href="/">Go to the console</Link>.
              </p>
            </>
          )}
        </div>
      </div>
    </ToastProvider>
  );
}
