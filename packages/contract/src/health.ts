import { z } from 'zod';

export const health = z.object({
  status: z.enum(['ok', 'unavailable', 'starting']),
  db: z.boolean().optional().describe('The database answered within a second'),
  mqtt: z
    .boolean()
    .optional()
    .describe('The gateway is connected to the broker (when this process runs one)'),
});
export type Health = z.infer<typeof health>;
