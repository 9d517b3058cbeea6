// The household portal's navigation, in one list: the header renders it and the every-page
// browser test (test/e2e-pages.test.ts) visits each entry.
export const NAV = [
  { href: '/', label: 'Home' },
  { href: '/statistics', label: 'Statistics' },
  { href: '/bills', label: 'Bills' },
  { href: '/tariff', label: 'Tariff' },
  { href: '/limits', label: 'Limits' },
  { href: '/top-up', label: 'Payments' },
  { href: '/alerts', label: 'Alerts' },
  { href: '/profile', label: 'Profile' },
] as const;
