import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per process, served at /metrics. Label values are bounded sets (codes, kinds). */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'kilowire_' });

export const metrics = {
  messagesIn: new Counter({
    name: 'kilowire_gateway_messages_total',
    help: 'MQTT messages received by the gateway, by topic kind',
    labelNames: ['kind'] as const,
    registers: [registry],
  }),
  rejected: new Counter({
    name: 'kilowire_gateway_rejected_total',
    help: 'Messages rejected by the gateway, by stable error code',
    labelNames: ['code'] as const,
    registers: [registry],
  }),
  readingsStored: new Counter({
    name: 'kilowire_readings_stored_total',
    help: 'Interval readings newly committed (duplicates excluded)',
    registers: [registry],
  }),
  veeFindings: new Counter({
    name: 'kilowire_vee_findings_total',
    help: 'VEE rule findings, by rule',
    labelNames: ['rule'] as const,
    registers: [registry],
  }),
  batchSeconds: new Histogram({
    name: 'kilowire_gateway_batch_seconds',
    help: 'Time to commit one ingest batch',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  }),
  commands: new Counter({
    name: 'kilowire_commands_total',
    help: 'Command results, by type and result',
    labelNames: ['type', 'result'] as const,
    registers: [registry],
  }),
  mqttConnected: new Gauge({
    name: 'kilowire_gateway_mqtt_connected',
    help: '1 while the gateway is connected to the broker',
    registers: [registry],
  }),
  httpSeconds: new Histogram({
    name: 'kilowire_http_request_duration_seconds',
    help: 'HTTP API request duration, by method, route pattern (not the raw URL) and status code',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  }),
};
