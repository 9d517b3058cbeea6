import { lazy, Suspense, useCallback, useEffect, useMemo, useState } from 'react';
import type { Me, Meter, MeterList, MeterListQuery, Role, SessionState } from '@kilowire/contract';
import { api, ApiError, qs, setUnauthenticatedHandler } from './api.ts';
import { Loading, SessionContext, type Session } from './common.tsx';
import { NAV } from './nav.ts';
import { Link, navigate, usePath } from './router.tsx';
import { LoginPage } from './pages/Login.tsx';

// The first page anyone sees is the log-in page: it carries only React, the shell and the
// form (bench key first_page_js_gzip_kb). Every portal page loads on first visit.
const HomePage = lazy(() => import('./pages/Home.tsx').then((m) => ({ default: m.HomePage })));
const LimitsPage = lazy(() => import('./pages/Limits.tsx').then((m) => ({ default: m.LimitsPage })));
const ProfilePage = lazy(() => import('./pages/Profile.tsx').then((m) => ({ default: m.ProfilePage })));
const AlertsPage = lazy(() => import('./pages/Alerts.tsx').then((m) => ({ default: m.AlertsPage })));
const TopUpPage = lazy(() => import('./pages/TopUp.tsx').then((m) => ({ default: m.TopUpPage })));
const TopupStatusPage = lazy(() => import('./pages/TopUp.tsx').then((m) => ({ default: m.TopupStatusPage })));
const SandboxPayPage = lazy(() =>
  import('./pages/SandboxPay.tsx').then((m) => ({ default: m.SandboxPayPage })),
);
const BillsPage = lazy(() => import('./pages/Bills.tsx').then((m) => ({ default: m.BillsPage })));
const TariffPage = lazy(() => import('./pages/Tariff.tsx').then((m) => ({ default: m.TariffPage })));

/** The sandbox provider's card page: reached from a payment link, with or without a session. */
const SANDBOX_PAGE = /^\/pay\/sandbox\/([A-Za-z0-9_-]+)$/;
/** Accepting a staff invitation: reached from the link, without a session. */
const INVITE_PAGE = /^\/invite\/([A-Za-z0-9_-]+)$/;
const InvitePage = lazy(() => import('./staff/admin/Invite.tsx'));
// Someone signed in with an initial password sees only this until they choose their own.
const ChoosePasswordPage = lazy(() => import('./staff/admin/ChoosePassword.tsx'));
/** One top-up: /top-ups/<uuid>. */
const TOPUP_PAGE = /^\/top-ups\/([0-9a-f-]{36})$/;

const StatisticsPage = lazy(() => import('./pages/Statistics.tsx'));
// The staff consoles (supplier, administrator, network operator) load only for staff: the
// household's first page never carries them.
const StaffApp = lazy(() => import('./staff/StaffApp.tsx'));

/** Which portal a role gets: a new role in the contract fails type-checking until it has one. */
const PORTAL: Record<Role, 'household' | 'staff'> = {
  consumer: 'household',
  supplier: 'staff',
  admin: 'staff',
  operator: 'staff',
};

interface Account {
  me: Me;
  meters: Meter[];
}

type Auth = { state: 'loading' } | { state: 'out' } | ({ state: 'in' } & Account);

async function loadAccount(): Promise<Account> {
  const me = await api<Me>('GET', '/api/me');
  // Nothing but the password change answers until then (403 PASSWORD_CHANGE_REQUIRED).
  if (me.user.mustChangePassword) return { me, meters: [] };
  const meters = await api<MeterList>('GET', `/api/meters${qs<MeterListQuery>({ limit: 200 })}`);
  return { me, meters: meters.items };
}

/**
 * The account of whoever this browser is signed in as, or null. GET /api/session answers 200
 * either way, so a visitor who has not signed in yet sees no failed request (and no console error).
 */
async function signedInAccount(): Promise<Account | null> {
  const s = await api<SessionState>('GET', '/api/session');
  return s.signedIn ? loadAccount() : null;
}

function safeNext(): string {
  const next = new URLSearchParams(location.search).get('next');
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') ? next : '/';
}

export function App() {
  const path = usePath();
  const [auth, setAuth] = useState<Auth>({ state: 'loading' });
  const [serial, setSerial] = useState<string | null>(null);
  const [bootError, setBootError] = useState<ApiError | null>(null);

  const signedOut = useCallback(() => {
    setAuth({ state: 'out' });
    if (
      location.pathname !== '/login' &&
      !SANDBOX_PAGE.test(location.pathname) &&
      !INVITE_PAGE.test(location.pathname)
    ) {
      const here = location.pathname + location.search;
      navigate(here === '/' ? '/login' : `/login?next=${encodeURIComponent(here)}`, { replace: true });
    }
  }, []);

  const start = useCallback(() => {
    setBootError(null);
    signedInAccount().then(
      (s) => {
        if (!s) {
          signedOut();
          return;
        }
        setAuth({ state: 'in', ...s });
        setSerial((cur) => cur ?? s.meters[0]?.serial ?? null);
      },
      (e: unknown) => {
        if (e instanceof ApiError && e.status === 401) signedOut();
        else setBootError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)));
      },
    );
  }, [signedOut]);

  useEffect(() => {
    setUnauthenticatedHandler(signedOut);
    start();
  }, [signedOut, start]);

  const signOut = useCallback(() => {
    api('DELETE', '/api/session', {})
      .catch(() => undefined)
      .finally(() => {
        setAuth({ state: 'out' });
        navigate('/login', { replace: true });
      });
  }, []);

  const session = useMemo<Session | null>(
    () => (auth.state === 'in' ? { me: auth.me, meters: auth.meters, serial, setSerial, signOut } : null),
    [auth, serial, signOut],
  );

  const sandbox = SANDBOX_PAGE.exec(path);
  if (sandbox)
    return (
      <Suspense fallback={<Loading what="payment page" />}>
        <SandboxPayPage session={sandbox[1]!} />
      </Suspense>
    );
  const invite = INVITE_PAGE.exec(path);
  if (invite)
    return (
      <Suspense fallback={<Loading what="invitation" />}>
        <InvitePage token={invite[1]!} />
      </Suspense>
    );

  if (bootError) {
    return (
      <main id="main" className="container narrow">
        <h1>Kilowire</h1>
        <div className="notice notice-error" role="alert">
          <p>Could not load your account: {bootError.message}</p>
          <button type="button" className="btn" onClick={start}>
            Try again
          </button>
        </div>
      </main>
    );
  }
  if (auth.state === 'loading') {
    return (
      <main id="main" className="container narrow">
        <Loading what="Kilowire" />
      </main>
    );
  }
  if (auth.state === 'out' || path === '/login') {
    if (auth.state === 'in' && path === '/login') {
      // Already signed in: go where the user was heading.
      queueMicrotask(() => navigate(safeNext(), { replace: true }));
      return null;
    }
    return (
      <LoginPage
        onSignedIn={() => {
          const next = safeNext();
          loadAccount().then(
            (s) => {
              setAuth({ state: 'in', ...s });
              setSerial(s.meters[0]?.serial ?? null);
              navigate(next, { replace: true });
            },
            (e: unknown) => setBootError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
          );
        }}
      />
    );
  }

  if (auth.me.user.mustChangePassword) {
    return (
      <Suspense fallback={<Loading what="Kilowire" />}>
        <ChoosePasswordPage name={auth.me.user.displayName} onDone={start} onSignOut={signOut} />
      </Suspense>
    );
  }

  const name = auth.me.consumer?.name ?? auth.me.user.displayName;
  const portal = PORTAL[auth.me.user.role];
  return (
    <SessionContext.Provider value={session}>
      <a className="skip-link" href="#main">
        Skip to main content
      </a>
      {portal === 'household' ? (
        <HouseholdHeader name={name} path={path} signOut={signOut} />
      ) : (
        <StaffHeader
          name={name}
          org={auth.me.organisation?.name ?? null}
          console={CONSOLE_NAME[auth.me.user.role]}
          signOut={signOut}
        />
      )}
      <main
        id="main"
        tabIndex={-1}
        className={portal === 'household' ? 'container' : 'container container-wide'}
      >
        {portal === 'household' ? (
          <Suspense fallback={<Loading what="page" />}>
            <Route path={path} />
          </Suspense>
        ) : (
          // Supplier, administrator and network operator: one console shell, pages by role.
          <Suspense fallback={<Loading what="console" />}>
            <StaffApp path={path} />
          </Suspense>
        )}
      </main>
      <footer className="site-footer">
        <div className={portal === 'household' ? 'container' : 'container container-wide'}>
          <p>Kilowire — open-source smart metering</p>
        </div>
      </footer>
    </SessionContext.Provider>
  );
}

/** What the staff header calls the console, by role. */
const CONSOLE_NAME: Record<Role, string> = {
  consumer: '',
  supplier: 'Supplier console',
  admin: 'Platform',
  operator: 'Network',
};

/**
 * The household header: brand, then on phones a Menu button that opens the navigation as a
 * panel (eight links do not fit a 390 px row), and "Log out" always in line; on wide screens
 * the navigation is one row. The menu closes on navigation and on Escape.
 */
function HouseholdHeader({ name, path, signOut }: { name: string; path: string; signOut: () => void }) {
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [path]);
  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent): void => {
      if (e.key === 'Escape') {
        setOpen(false);
        document.getElementById('menu-button')?.focus();
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [open]);
  return (
    <header className="site-header">
      <div className="container header-inner">
        <Link href="/" className="brand">
          <span aria-hidden="true" className="brand-mark">
            ⚡
          </span>
          Kilowire
        </Link>
        <nav aria-label="Main" id="main-nav" className={open ? 'main-nav is-open' : 'main-nav'}>
          <ul className="nav-list">
            {NAV.map((n) => (
              <li key={n.href}>
                <Link href={n.href} aria-current={path === n.href ? 'page' : undefined}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
          {/* The header has no room for the name on a phone: the open menu says who is signed in. */}
          <p className="nav-account">Signed in as {name}</p>
        </nav>
        <div className="header-actions">
          <p className="signed-in">
            <span className="visually-hidden">Signed in as </span>
            {name}
          </p>
          <button
            type="button"
            id="menu-button"
            className="menu-button"
            aria-expanded={open}
            aria-controls="main-nav"
            onClick={() => setOpen((o) => !o)}
          >
            <span className="menu-icon" aria-hidden="true" />
            <span className="menu-label">Menu</span>
          </button>
          <button type="button" className="link-button" onClick={signOut}>
            Log out
          </button>
        </div>
      </div>
    </header>
  );
}

function StaffHeader(p: { name: string; org: string | null; console: string; signOut: () => void }) {
  return (
    <header className="site-header">
      <div className="container container-wide header-inner">
        <Link href="/" className="brand">
          <span aria-hidden="true" className="brand-mark">
            ⚡
          </span>
          Kilowire<span className="brand-sub">{p.console}</span>
        </Link>
        <div className="header-actions">
          <p className="signed-in">
            <span className="visually-hidden">Signed in as </span>
            {p.name}
            {p.org && <span className="signed-in-org"> · {p.org}</span>}
          </p>
          <button type="button" className="link-button" onClick={p.signOut}>
            Log out
          </button>
        </div>
      </div>
    </header>
  );
}

function Route({ path }: { path: string }) {
  switch (path) {
    case '/':
      return <HomePage />;
    case '/statistics':
      return <StatisticsPage />;
    case '/bills':
      return <BillsPage />;
    case '/tariff':
      return <TariffPage />;
    case '/limits':
      return <LimitsPage />;
    case '/alerts':
      return <AlertsPage />;
    case '/profile':
      return <ProfilePage />;
    case '/top-up':
      return <TopUpPage />;
    default: {
      const topup = TOPUP_PAGE.exec(path);
      if (topup) return <TopupStatusPage id={topup[1]!} key={topup[1]} />;
      return <NotFound />;
    }
  }
}

function NotFound() {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        There is no page at this address. <Link href="/">Go to Home</Link>.
      </p>
    </>
  );
}
