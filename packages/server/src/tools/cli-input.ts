import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * What the broker CLIs (`mosquitto-config`, `broker-cluster`) read the same way: the head-end
 * logins, its password (flag, file or MQTT_PASSWORD, never echoed) and the fleet file of meter
 * credentials. One place, so both refuse the same input with the same words.
 */
export const headendUsers = z
  .array(z.string().regex(/^[A-Za-z0-9_-]+$/))
  .min(1)
  .default(['headend']);

export const fleetFile = z.object({
  meters: z.array(z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/), password: z.string().min(1) })),
});
export type FleetFile = z.infer<typeof fleetFile>;

type Fail = (message: string) => never;

/** `--headend-password`, else MQTT_PASSWORD; `--headend-password-file` wins over both. */
export function headendPassword(
  values: Record<string, string | string[] | boolean | undefined>,
  fail: Fail,
): string | undefined {
  let password = values['headend-password'] ?? process.env.MQTT_PASSWORD;
  const file = values['headend-password-file'];
  if (typeof file === 'string') {
    try {
      password = readFileSync(file, 'utf8').trim();
    } catch (err) {
      fail(`--headend-password-file: ${(err as Error).message}`);
    }
  }
  return typeof password === 'string' ? password : undefined;
}

/** The fleet file, checked; any fault is one line naming the file and the field. */
export function readFleetFile(file: string, fail: Fail): FleetFile {
  try {
    return fleetFile.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    return fail(
      `--fleet ${file}: ${err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') : (err as Error).message}`,
    );
  }
}
