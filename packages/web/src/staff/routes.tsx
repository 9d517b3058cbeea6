import { lazy, type ComponentType, type LazyExoticComponent } from 'react';
import type { Role } from '@kilowire/contract';

/**
 * The staff portals' pages, in one table: the side navigation, the router and the
 * every-page accessibility test all read it. A page is shown to a user who holds `cap` (from
 * /api/me, the same table the API enforces) or, without `cap`, has one of `roles`.
 * Every page loads on first visit only, so the household's first page never carries them.
 */
export interface StaffPage {
  /** Exact path, or a pattern whose first group is passed as `param` (e.g. a meter serial). */
  path: string | RegExp;
  /** In the side navigation under this section; omitted = reached by links only. */
  nav?: { section: 'Operations' | 'Money' | 'Platform'; label: string };
  cap?: string;
  roles?: readonly Role[];
  component: LazyExoticComponent<ComponentType<{ param?: string }>>;
  /** For the every-page test: a concrete address when `path` is a pattern. */
  example?: string;
}

const page = (load: () => Promise<{ default: ComponentType<{ param?: string }> }>) => lazy(load);

export const STAFF_PAGES: StaffPage[] = [
  // #8 fleet — first, so the fleet is the supplier console's home (the first nav entry opens at /).
  {
    path: '/fleet',
    nav: { section: 'Operations', label: 'Fleet' },
    cap: 'fleet.read',
    component: page(() => import('./fleet/FleetPage.tsx').then((m) => ({ default: m.FleetPage }))),
  },
  {
    path: /^\/meters\/([^/]+)$/,
    cap: 'fleet.read',
    example: '/meters/KW000001',
    component: page(() => import('./fleet/MeterPage.tsx').then((m) => ({ default: m.MeterPage }))),
  },
  // #8 fleet end
  {
    path: '/alerts',
    nav: { section: 'Operations', label: 'Alerts' },
    roles: ['supplier', 'admin'],
    component: page(() => import('../pages/Alerts.tsx').then((m) => ({ default: m.AlertsPage }))),
  },
  {
    path: '/outbox',
    nav: { section: 'Operations', label: 'Outbox' },
    cap: 'outbox.read',
    component: page(() => import('../pages/Outbox.tsx').then((m) => ({ default: m.OutboxPage }))),
  },
  {
    path: '/accounts',
    nav: { section: 'Money', label: 'Accounts' },
    cap: 'accounts.read',
    component: page(() => import('../pages/Accounts.tsx').then((m) => ({ default: m.AccountsPage }))),
  },
  {
    path: '/bill-runs',
    nav: { section: 'Money', label: 'Bill runs' },
    cap: 'billruns.read',
    component: page(() => import('../pages/BillRuns.tsx').then((m) => ({ default: m.BillRunsPage }))),
  },
  {
    path: '/tariffs',
    nav: { section: 'Money', label: 'Tariffs' },
    roles: ['supplier'],
    component: page(() =>
      import('../pages/SupplierTariffs.tsx').then((m) => ({ default: m.SupplierTariffsPage })),
    ),
  },
  {
    path: '/tariff-requests',
    nav: { section: 'Money', label: 'Tariff requests' },
    cap: 'tariff_requests.decide',
    component: page(() =>
      import('../pages/TariffRequests.tsx').then((m) => ({ default: m.TariffRequestsPage })),
    ),
  }, // #8 cases and extracts
  {
    path: '/tamper-cases',
    nav: { section: 'Operations', label: 'Tamper cases' },
    cap: 'tamper.manage',
    component: page(() => import('./tamper/TamperCases.tsx')),
  },
  {
    path: /^\/tamper-cases\/([^/]+)$/,
    cap: 'tamper.manage',
    component: page(() => import('./tamper/TamperCase.tsx')),
    example: '/tamper-cases/1',
  },
  {
    path: '/extracts',
    nav: { section: 'Operations', label: 'Extracts' },
    cap: 'extracts.manage',
    component: page(() => import('./extracts/Extracts.tsx')),
  },
  // #8 supply
  {
    path: '/approvals',
    nav: { section: 'Operations', label: 'Approvals' },
    cap: 'approvals.read',
    component: page(() => import('./supply/ApprovalsPage.tsx').then((m) => ({ default: m.ApprovalsPage }))),
  },
  {
    path: '/settings/supply',
    nav: { section: 'Operations', label: 'Protection' },
    cap: 'supplier.settings',
    component: page(() =>
      import('./supply/SupplySettingsPage.tsx').then((m) => ({ default: m.SupplySettingsPage })),
    ),
  },
  // #10 D firmware: images, campaigns (the new-campaign page before the numbered pattern).
  {
    path: '/firmware',
    nav: { section: 'Operations', label: 'Firmware' },
    cap: 'firmware.read',
    component: page(() => import('./firmware/FirmwarePage.tsx')),
  },
  {
    path: '/firmware/campaigns',
    nav: { section: 'Operations', label: 'Firmware campaigns' },
    cap: 'firmware.read',
    component: page(() => import('./firmware/CampaignsPage.tsx')),
  },
  {
    path: '/firmware/campaigns/new',
    cap: 'firmware.manage',
    component: page(() => import('./firmware/NewCampaignPage.tsx')),
  },
  {
    path: /^\/firmware\/campaigns\/(\d+)$/,
    cap: 'firmware.read',
    example: '/firmware/campaigns/1',
    component: page(() => import('./firmware/CampaignPage.tsx')),
  },
  // #10 D firmware end
  // #8 admin
  {
    path: '/organisations',
    nav: { section: 'Platform', label: 'Organisations' },
    cap: 'orgs.manage',
    component: page(() => import('./admin/Organisations.tsx')),
  },
  {
    path: '/staff',
    nav: { section: 'Platform', label: 'Staff' },
    cap: 'staff.manage',
    component: page(() => import('./admin/Staff.tsx')),
  },
  {
    path: '/meters-admin',
    nav: { section: 'Platform', label: 'Meters' },
    cap: 'meters.provision',
    component: page(() => import('./admin/MetersAdmin.tsx')),
  },
  {
    path: '/audit',
    nav: { section: 'Platform', label: 'Audit log' },
    cap: 'audit.read',
    component: page(() => import('./admin/Audit.tsx')),
  },
  {
    path: '/system',
    nav: { section: 'Platform', label: 'System health' },
    cap: 'system.read',
    component: page(() => import('./admin/System.tsx')),
  },
  // #9 outages — first among the operator's pages, so the network overview is its console's home.
  {
    path: '/network',
    nav: { section: 'Operations', label: 'Network' },
    cap: 'network.read',
    component: page(() => import('./outages/NetworkOverview.tsx')),
  },
  {
    path: /^\/incidents\/([^/]+)$/,
    cap: 'network.read',
    component: page(() => import('./outages/IncidentPage.tsx')),
    example: '/incidents/1',
  },
  {
    path: '/sla',
    nav: { section: 'Operations', label: 'SLA' },
    cap: 'network.read',
    component: page(() => import('./outages/SlaPage.tsx')),
  },
  {
    // The operator's own alerts (incidents opened, SLA at risk or missed, incomplete
    // collections): the same list as the supplier's, after the network overview so that the
    // overview stays the operator's home.
    path: '/alerts',
    nav: { section: 'Operations', label: 'Alerts' },
    roles: ['operator'],
    component: page(() => import('../pages/Alerts.tsx').then((m) => ({ default: m.AlertsPage }))),
  },
  {
    path: '/settings/network',
    nav: { section: 'Operations', label: 'Outage settings' },
    // Operator staff read them, operator admins change them (admins have no operator's settings).
    roles: ['operator'],
    component: page(() => import('./outages/NetworkSettingsPage.tsx')),
  },
  // #9 outages end
  // #9 collection
  {
    path: '/collection',
    nav: { section: 'Operations', label: 'Collection' },
    cap: 'network.read',
    component: page(() => import('./collection/CollectionPage.tsx')),
  },
  {
    path: /^\/collection\/([^/]+\/\d{4}-\d{2}-\d{2})$/,
    cap: 'network.read',
    example: '/collection/EAST-1/2026-11-20',
    component: page(() => import('./collection/CollectionDay.tsx')),
  },
  // #9 collection end
  // #9 charges
  {
    path: '/network-invoices',
    nav: { section: 'Money', label: 'Network invoices' },
    // By role, not by cap: suppliers hold network_invoices.read too, and see /network-charges.
    roles: ['operator', 'admin'],
    component: page(() => import('./netbilling/NetworkInvoices.tsx')),
  },
  {
    path: '/network-tariffs',
    nav: { section: 'Money', label: 'Network tariffs' },
    cap: 'network.read',
    component: page(() => import('./netbilling/NetworkTariffs.tsx')),
  },
  {
    path: '/network-charges',
    nav: { section: 'Money', label: 'Network charges' },
    roles: ['supplier'],
    component: page(() =>
      import('./netbilling/NetworkInvoices.tsx').then((m) => ({ default: m.SupplierCharges })),
    ),
  },
  // #9 charges end
  // #8 design: the network operator's console (the same shell as the supplier's)
  {
    path: '/network/meters',
    nav: { section: 'Operations', label: 'Meters' },
    roles: ['operator'],
    component: page(() => import('./network/NetworkMeters.tsx')),
  },
];

export function allowed(p: StaffPage, role: Role, caps: readonly string[]): boolean {
  if (p.cap) return caps.includes(p.cap);
  return p.roles ? p.roles.includes(role) : false;
}

/** The page for `path` and the parameter its pattern captured, if the user may see it. */
export function matchPage(
  path: string,
  role: Role,
  caps: readonly string[],
): { page: StaffPage; param?: string } | null {
  for (const p of STAFF_PAGES) {
    if (!allowed(p, role, caps)) continue;
    if (typeof p.path === 'string') {
      if (p.path === path) return { page: p };
    } else {
      const m = p.path.exec(path);
      if (m) return { page: p, ...(m[1] !== undefined ? { param: decodeURIComponent(m[1]) } : {}) };
    }
  }
  return null;
}
