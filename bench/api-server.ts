/**
 * The HTTP API for part (d), in its own process so that the load generator does not share
 * its event loop: buildApi + listen on a free port, as `--services=api` would run it.
 * Env: DATABASE_URL, DATA_DIR. Prints "LISTENING <port>" when ready; SIGTERM closes.
 */
import { privateKeyFromB64 } from '@kilowire/protocol';
import { buildApi, createPool, loadConfig, logger, rootLogger } from '@kilowire/server';

async function main(): Promise<void> {
  rootLogger.level = 'warn';
  const config = loadConfig(
    {
      DATABASE_URL: process.env.DATABASE_URL,
      DATA_DIR: process.env.DATA_DIR,
      HOST: '127.0.0.1',
      PORT: '8080',
      DEMO_SEED: 'false',
      MQTT_URL: 'mqtt://127.0.0.1:1',
      MQTT_PASSWORD: 'unused',
      LOG_LEVEL: 'warn',
    },
    ['--services=api'],
  );
  // Same pool size as main.ts gives the API.
  const pool = createPool(config.databaseUrl!, 20);
  const app = await buildApi({
    pool,
    config,
    log: logger('api'),
    commandKey: privateKeyFromB64(config.commandSigningKey),
    ready: () => ({ mqtt: true }),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.stdout.write(`LISTENING ${port}\n`);
  const stop = () => {
    void app
      .close()
      .then(() => pool.end())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`api-server: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
