// What the global setup hands to every test file (vitest provide/inject).
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    mqttUrl: string;
  }
}
