import type { StatusMessage } from '@kilowire/protocol';
import type { FirmwareSlot, FirmwareState } from './state.ts';
import type { CommandOf, CommandResult } from './shared.ts';

/**
 * The meter's two image slots (A/B): it runs from the active one; a new image is written to
 * the idle one and only becomes active after it has been verified, so a bad transfer never
 * leaves the meter without a bootable image. The transfer itself lands in the firmware issue;
 * until then both firmware commands answer `failed` / NOT_SUPPORTED_YET.
 */
export class Firmware {
  constructor(private readonly st: FirmwareState) {
    if (st.slots[st.active] === null) {
      throw new Error(`firmware slot ${st.active} is active but holds no image`);
    }
  }

  static initial(version: string): FirmwareState {
    return { active: 'A', slots: { A: version, B: null } };
  }

  get activeSlot(): FirmwareSlot {
    return this.st.active;
  }
  get activeVersion(): string {
    // The constructor checked it, and nothing here empties the active slot.
    return this.st.slots[this.st.active]!;
  }
  /** Where the next image goes. */
  get idleSlot(): FirmwareSlot {
    return this.st.active === 'A' ? 'B' : 'A';
  }
  /** Version in the idle slot; null while it holds no image. */
  get idleVersion(): string | null {
    return this.st.slots[this.idleSlot];
  }

  status(): StatusMessage['firmware'] {
    return { slot: this.activeSlot, version: this.activeVersion };
  }

  offer(_cmd: CommandOf<'firmware.offer'>): CommandResult {
    return notYet();
  }

  activate(_cmd: CommandOf<'firmware.activate'>): CommandResult {
    return notYet();
  }

  cancel(_cmd: CommandOf<'firmware.cancel'>): CommandResult {
    return notYet();
  }
}

function notYet(): CommandResult {
  return { result: 'failed', code: 'NOT_SUPPORTED_YET', detail: 'firmware transfer not implemented' };
}
