/** Small things the meter's collaborators share. */
import type {
  Command,
  CommandType,
  EventCode,
  MeterEvent,
  MeterReplyCode,
  ReplyResult,
} from '@kilowire/protocol';

/**
 * How a collaborator raises an event. The facade buffers them and turns them into outbox
 * messages in the same store write as the change that caused them, so an event is never
 * persisted without its cause, nor the other way round.
 */
export type Emit = (code: EventCode, t: number, data?: MeterEvent['data']) => void;

/** What applying one authenticated command came to; becomes the reply's result, code and detail. */
export interface CommandResult {
  result: ReplyResult;
  code?: MeterReplyCode;
  detail?: string;
}

export type CommandOf<T extends CommandType> = Extract<Command, { type: T }>;

/** Drop the oldest entries of `list` (oldest first) beyond the newest `max`, in place. */
export function keepNewest(list: unknown[], max: number): void {
  if (list.length > max) list.splice(0, list.length - max);
}

/** A time-of-use band: 1 day (everything else), 2 e.g. night, 3 peak. */
export type Band = 1 | 2 | 3;
