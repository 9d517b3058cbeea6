import { z } from 'zod';
import { cursor, limit, serial, timestamp } from './common.ts';
import { FW_CAMPAIGN_STATUSES, FW_METER_STATES, FW_SKIP_REASONS } from './enums.ts';

// #10 firmware: the supplier's images and campaigns, and the operator's view of planned
// activations. Supplier staff read; supplier admins upload, create, pause, resume and
// cancel; a second supplier admin approves a campaign's start (the approvals of #8).

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM, 24-hour');

export const fwImage = z
  .object({
    id: z.number().int(),
    version: z.string(),
    sequence: z.number().int(),
    hardwareClass: z.string(),
    size: z.number().int().describe('Bytes'),
    sha256: z.string(),
    blockSize: z.number().int(),
    blocks: z.number().int(),
    notes: z.string().nullable(),
    uploadedBy: z.string().nullable().describe('Name of the supplier admin who uploaded it'),
    createdAt: timestamp,
    campaigns: z.number().int().describe('Campaigns that use this image'),
  })
  .describe('FirmwareImage');
export type FwImage = z.infer<typeof fwImage>;

export const fwImagesResponse = z.object({ items: z.array(fwImage) });
export type FwImagesResponse = z.infer<typeof fwImagesResponse>;

export const fwImageParams = z.object({ id: z.coerce.number().int().min(1) });

/**
 * Step 1 of an upload: the signed manifest (exactly as `npm run firmware -- sign` wrote it).
 * The signature and the manifest's schema are checked here, before any byte of the image
 * moves; step 2 streams the image itself.
 */
export const fwUploadBody = z.strictObject({
  manifest: z.string().min(2).max(80_000).describe('The manifest JSON text, exactly as signed'),
  signature: z
    .string()
    .min(1)
    .max(200)
    .describe('Base64 Ed25519 signature of the manifest by the firmware key'),
  notes: z.string().max(500).optional(),
});
export type FwUploadBody = z.infer<typeof fwUploadBody>;

export const fwUploadResponse = z.object({
  uploadId: z
    .string()
    .describe('PUT the image bytes to /api/firmware/uploads/{uploadId} (application/octet-stream)'),
  version: z.string(),
  hardwareClass: z.string(),
  size: z.number().int(),
  blocks: z.number().int(),
  expiresAt: timestamp,
});
export type FwUploadResponse = z.infer<typeof fwUploadResponse>;

export const fwUploadParams = z.object({ uploadId: z.uuid() });

/** Which meters a campaign goes to: a filter over the supplier's fleet, or named serials. */
export const fwTarget = z.union([
  z.strictObject({
    filter: z.strictObject({
      hardwareClass: z.string().max(32).optional(),
      /** Meters currently running this version. */
      version: z.string().max(32).optional(),
      area: z.string().max(64).optional(),
      feeder: z.string().max(64).optional(),
      tariffId: z.number().int().min(1).optional(),
      mode: z.enum(['credit', 'prepayment']).optional(),
    }),
  }),
  z.strictObject({ serials: z.array(serial).min(1).max(20_000) }),
]);
export type FwTarget = z.infer<typeof fwTarget>;

export const fwCampaignBody = z
  .strictObject({
    name: z.string().trim().min(1).max(80),
    imageId: z.number().int().min(1),
    target: fwTarget,
    canaryCount: z.number().int().min(1).max(100_000).optional(),
    canaryPct: z.number().gt(0).max(100).optional(),
    waveSize: z.number().int().min(1).max(100_000),
    failureThresholdPct: z.number().min(0).max(100),
    windowFrom: hhmm,
    windowTo: hhmm,
    feederMax: z.number().int().min(1).max(10_000).default(5),
    feederSpacingS: z.number().int().min(1).max(86_400).default(300),
    confirmS: z.number().int().min(30).max(86_400).default(600),
    reason: z.string().trim().min(1).max(500).describe('Why: shown to the approving admin'),
  })
  .refine((b) => (b.canaryCount === undefined) !== (b.canaryPct === undefined), {
    message: 'give either canaryCount or canaryPct',
    path: ['canaryCount'],
  })
  .refine((b) => b.windowFrom !== b.windowTo, {
    message: 'the window must not be empty',
    path: ['windowTo'],
  });
export type FwCampaignBody = z.infer<typeof fwCampaignBody>;

export const fwTargetPreviewBody = z.strictObject({ imageId: z.number().int().min(1), target: fwTarget });
export const fwTargetPreview = z.object({
  meters: z.number().int().describe('Meters the target selects that can take the image'),
  excluded: z
    .object({
      otherHardware: z.number().int(),
      notNewer: z.number().int().describe('Already at or above the image’s security sequence'),
      busy: z.number().int().describe('In another unfinished transfer'),
      notFound: z.array(z.string()).describe('Named serials that are not the supplier’s active meters'),
    })
    .describe('Why some meters of the target will not get it'),
});
export type FwTargetPreview = z.infer<typeof fwTargetPreview>;

const stateCounts = z.record(z.enum(FW_METER_STATES), z.number().int());

export const fwCampaignSummary = z
  .object({
    id: z.number().int(),
    name: z.string(),
    image: z.object({ id: z.number().int(), version: z.string(), hardwareClass: z.string() }),
    status: z.enum(FW_CAMPAIGN_STATUSES),
    stage: z.number().int().describe('Current stage; 0 is the canary'),
    stages: z.number().int(),
    meters: z.number().int(),
    counts: stateCounts.describe('Meters per state (every state present, 0 when none)'),
    createdBy: z.string().nullable(),
    createdAt: timestamp,
    startedAt: timestamp.nullable(),
    finishedAt: timestamp.nullable(),
    haltedReason: z.string().nullable(),
    requestId: z.number().int().nullable().describe('The approval request while one is pending'),
  })
  .describe('FirmwareCampaign');
export type FwCampaignSummary = z.infer<typeof fwCampaignSummary>;

export const fwCampaignsQuery = z.strictObject({
  status: z.enum(FW_CAMPAIGN_STATUSES).optional(),
  limit: limit(200, 50),
  cursor: cursor.optional(),
});
export const fwCampaignsResponse = z.object({
  items: z.array(fwCampaignSummary),
  nextCursor: z.string().nullable(),
});
export type FwCampaignsResponse = z.infer<typeof fwCampaignsResponse>;

export const fwCampaignParams = z.object({ id: z.coerce.number().int().min(1) });

export const fwStage = z.object({
  stage: z.number().int(),
  meters: z.number().int(),
  counts: stateCounts,
  failures: z.number().int(),
  maxFailures: z.number().int().describe('More failures than this halt the campaign'),
  downloadPct: z.number().describe('Blocks held over blocks needed, for meters past the offer (0-100)'),
});
export type FwStage = z.infer<typeof fwStage>;

export const fwCampaignDetail = fwCampaignSummary
  .extend({
    target: fwTarget,
    canaryCount: z.number().int().nullable(),
    canaryPct: z.number().nullable(),
    waveSize: z.number().int(),
    failureThresholdPct: z.number(),
    windowFrom: z.string(),
    windowTo: z.string(),
    feederMax: z.number().int(),
    feederSpacingS: z.number().int(),
    confirmS: z.number().int(),
    stagesDetail: z.array(fwStage),
    failureReasons: z.array(z.object({ reason: z.string(), meters: z.number().int() })),
    timeline: z.array(
      z.object({
        at: timestamp,
        kind: z.string(),
        actor: z.string().nullable(),
        detail: z.string().nullable(),
      }),
    ),
  })
  .describe('FirmwareCampaignDetail');
export type FwCampaignDetail = z.infer<typeof fwCampaignDetail>;

export const fwCampaignMetersQuery = z.strictObject({
  state: z.enum(FW_METER_STATES).optional(),
  stage: z.coerce.number().int().min(0).optional(),
  limit: limit(500, 100),
  cursor: cursor.optional(),
});
export const fwCampaignMeter = z.object({
  serial: z.string(),
  stage: z.number().int(),
  state: z.enum(FW_METER_STATES),
  blocksDone: z.number().int(),
  blocksTotal: z.number().int(),
  reason: z.string().nullable(),
  skipReason: z.enum(FW_SKIP_REASONS).nullable(),
  feederId: z.string().nullable(),
  activateAt: timestamp.nullable(),
  updatedAt: timestamp,
});
export type FwCampaignMeter = z.infer<typeof fwCampaignMeter>;
export const fwCampaignMetersResponse = z.object({
  items: z.array(fwCampaignMeter),
  nextCursor: z.string().nullable(),
});
export type FwCampaignMetersResponse = z.infer<typeof fwCampaignMetersResponse>;

export const fwCampaignActionBody = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });

/** #10 operator: where and when meters will reboot on purpose (so it is not taken for an outage). */
export const activationWindowsQuery = z.strictObject({
  area: z.string().min(1).max(64).optional(),
  days: z.coerce.number().int().min(1).max(14).default(2),
});
export const activationWindow = z.object({
  campaignId: z.number().int(),
  supplier: z.string(),
  feederId: z.string().nullable(),
  feederName: z.string().nullable(),
  areaId: z.string().nullable(),
  from: timestamp,
  to: timestamp.describe('Last planned activation plus the confirmation time'),
  meters: z.number().int(),
});
export type ActivationWindow = z.infer<typeof activationWindow>;
export const activationWindowsResponse = z.object({ items: z.array(activationWindow) });
export type ActivationWindowsResponse = z.infer<typeof activationWindowsResponse>;
