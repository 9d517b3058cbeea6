/** NOTIFY channel that wakes the delivery dispatcher (jobs service) after deliveries commit. */
export const DELIVERIES_CHANNEL = 'kw_deliveries';
