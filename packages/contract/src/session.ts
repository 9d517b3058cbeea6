import { z } from 'zod';
import { MIN_PASSWORD_LENGTH, ROLES } from './enums.ts';
import { timestamp } from './common.ts';

export const loginBody = z
  .strictObject({
    consumerId: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('Consumers: the consumer ID printed on the bill'),
    email: z.string().min(3).max(254).optional().describe('Staff: work email'),
    password: z.string().min(1).max(1024),
  })
  .refine((b) => (b.consumerId === undefined) !== (b.email === undefined), {
    message: 'give exactly one of consumerId (consumers) or email (staff)',
    path: ['consumerId'],
  });
export type LoginBody = z.infer<typeof loginBody>;

export const sessionUser = z.object({
  id: z.number(),
  role: z.enum(ROLES),
  displayName: z.string(),
  mustChangePassword: z
    .boolean()
    .optional()
    .describe(
      'Signed in with an initial password: choose a new one (POST /api/me/password) before anything else',
    ),
});

export const loginResponse = z.object({ user: sessionUser, expiresAt: timestamp });
export type LoginResponse = z.infer<typeof loginResponse>;

/** Whether this browser is signed in: a question, not an error (no 401 before anyone logged in). */
export const sessionState = z.discriminatedUnion('signedIn', [
  z.object({ signedIn: z.literal(false) }),
  z.object({ signedIn: z.literal(true), user: sessionUser, expiresAt: timestamp }),
]);
export type SessionState = z.infer<typeof sessionState>;

/** A new password one chooses oneself. */
export const newPassword = z
  .string()
  .min(MIN_PASSWORD_LENGTH, `at least ${MIN_PASSWORD_LENGTH} characters`)
  .max(1024);

export const passwordBody = z.strictObject({
  currentPassword: z.string().min(1).max(1024),
  newPassword,
});
export type PasswordBody = z.infer<typeof passwordBody>;
