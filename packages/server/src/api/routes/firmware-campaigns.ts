import {
  activationWindowsQuery,
  activationWindowsResponse,
  bodyErrorResponses,
  errorBody,
  errorResponses,
  fwCampaignActionBody,
  fwCampaignBody,
  fwCampaignDetail,
  fwCampaignMetersQuery,
  fwCampaignMetersResponse,
  fwCampaignParams,
  fwCampaignsQuery,
  fwCampaignsResponse,
  fwCampaignSummary,
  fwTargetPreview,
  fwTargetPreviewBody,
} from '@kilowire/contract';
import { withTx } from '../../db/pool.ts';
import {
  cancelCampaign,
  createCampaign,
  pauseCampaign,
  previewTarget,
  resumeCampaign,
} from '../../firmware/campaigns.ts';
import { campaignDetail, campaignMeters, listCampaigns } from '../../firmware/queries.ts';
import { activationWindows } from '../../firmware/windows.ts';
import { requireCapability } from '../../policies.ts';
import {
  actorOf,
  decodeIdCursor,
  decodeSerialCursor,
  encodeIdCursor,
  encodeSerialCursor,
  whoOf,
  type Routes,
} from '../http.ts';

const conflictResponses = {
  409: errorBody.describe(
    "Not possible in the campaign's current status, or no meter of the target can take the image (CONFLICT)",
  ),
} as const;

/**
 * #10 firmware campaigns: supplier staff follow them (firmware.read), supplier admins create,
 * pause, resume and cancel them (firmware.manage); starting one waits for a second supplier
 * admin through the approvals routes. Another supplier's campaign or image is 404. The
 * network operator sees the planned activations on its feeders (network.read).
 */
export const firmwareCampaignRoutes: Routes = async (app, deps) => {
  const { pool, commandKey } = deps;

  app.post(
    '/api/firmware/campaigns/preview',
    {
      schema: {
        tags: ['firmware'],
        summary: 'How many meters a target reaches with an image, and why the others are left out',
        body: fwTargetPreviewBody,
        response: { 200: fwTargetPreview, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'firmware.manage');
      return previewTarget(pool, actor, req.body);
    },
  );

  app.get(
    '/api/firmware/campaigns',
    {
      schema: {
        tags: ['firmware'],
        summary: 'Firmware campaigns, newest first, with their meters per state',
        querystring: fwCampaignsQuery,
        response: { 200: fwCampaignsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'firmware.read');
      const page = await listCampaigns(pool, actor, {
        status: req.query.status,
        limit: req.query.limit,
        beforeId: decodeIdCursor(req.query.cursor),
      });
      return {
        items: page.items,
        nextCursor: page.nextBefore === null ? null : encodeIdCursor(page.nextBefore),
      };
    },
  );

  app.post(
    '/api/firmware/campaigns',
    {
      schema: {
        tags: ['firmware'],
        summary:
          'Create a campaign (supplier admins): its meters and stages are fixed now; it waits for a second supplier admin to approve it',
        body: fwCampaignBody,
        response: { 201: fwCampaignSummary, ...errorResponses, ...bodyErrorResponses, ...conflictResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'firmware.manage');
      const r = await withTx(pool, whoOf(req), (t) => createCampaign(t, actor, req.body));
      return reply.code(201).send(r);
    },
  );

  app.get(
    '/api/firmware/campaigns/:id',
    {
      schema: {
        tags: ['firmware'],
        summary:
          'One campaign: its settings, stages with failures and download progress, failure reasons, timeline',
        params: fwCampaignParams,
        response: { 200: fwCampaignDetail, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'firmware.read');
      return campaignDetail(pool, actor, req.params.id);
    },
  );

  app.get(
    '/api/firmware/campaigns/:id/meters',
    {
      schema: {
        tags: ['firmware'],
        summary: "The campaign's meters by serial: stage, state, blocks held, reason, planned activation",
        params: fwCampaignParams,
        querystring: fwCampaignMetersQuery,
        response: { 200: fwCampaignMetersResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'firmware.read');
      const page = await campaignMeters(pool, actor, req.params.id, {
        state: req.query.state,
        stage: req.query.stage,
        limit: req.query.limit,
        afterSerial: decodeSerialCursor(req.query.cursor),
      });
      return {
        items: page.items,
        nextCursor: page.nextAfter === null ? null : encodeSerialCursor(page.nextAfter),
      };
    },
  );

  const actions = {
    pause: 'Pause: no new offers or activations (transfers under way go on)',
    resume: 'Resume a paused campaign',
    cancel: 'Cancel for good: unfinished meters are told to drop the image',
  } as const;
  for (const [action, summary] of Object.entries(actions) as [keyof typeof actions, string][]) {
    app.post(
      `/api/firmware/campaigns/:id/${action}`,
      {
        schema: {
          tags: ['firmware'],
          summary: `${summary} (supplier admins)`,
          params: fwCampaignParams,
          body: fwCampaignActionBody,
          response: {
            200: fwCampaignSummary,
            ...errorResponses,
            ...bodyErrorResponses,
            ...conflictResponses,
          },
        },
      },
      async (req) => {
        const actor = actorOf(req);
        requireCapability(actor, 'firmware.manage');
        const { id } = req.params;
        const why = req.body.reason;
        return withTx(pool, whoOf(req), (t) =>
          action === 'pause'
            ? pauseCampaign(t, actor, id, why)
            : action === 'resume'
              ? resumeCampaign(t, actor, id, why)
              : cancelCampaign(t, commandKey, actor, id, why),
        );
      },
    );
  }

  app.get(
    '/api/network/activation-windows',
    {
      schema: {
        tags: ['outages'],
        summary:
          'Planned firmware activations on the operator’s feeders (meters restarting on purpose, not an outage), per campaign and feeder',
        querystring: activationWindowsQuery,
        response: { 200: activationWindowsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      return { items: await activationWindows(pool, actor, req.query) };
    },
  );
};
