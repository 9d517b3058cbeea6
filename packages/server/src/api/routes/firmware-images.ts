import type { Readable } from 'node:stream';
import { z } from 'zod';
import {
  bodyErrorResponses,
  errorBody,
  errorResponses,
  fwImage,
  fwImageParams,
  fwImagesResponse,
  fwUploadBody,
  fwUploadParams,
  fwUploadResponse,
} from '@kilowire/contract';
import { AppError } from '../../errors.ts';
import { beginUpload, getImage, listImages, receiveImage } from '../../firmware/images.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, whoOf, type Routes } from '../http.ts';

const uploadErrorResponses = {
  409: errorBody.describe(
    'An image with this SHA-256, or with this hardware class and security sequence, is already uploaded (FW_DUPLICATE)',
  ),
  413: errorBody.describe('The image is larger than FIRMWARE_MAX_BYTES (PAYLOAD_TOO_LARGE)'),
  422: errorBody.describe(
    'Refused, nothing stored: the signature is not the firmware key’s (FW_BAD_SIGNATURE), the manifest does not add up (FW_BAD_MANIFEST), a block or the image does not match its hash (FW_HASH_MISMATCH, naming the first bad block), or the image is shorter or longer than the manifest says (FW_SIZE_MISMATCH)',
  ),
} as const;

/**
 * #10 firmware images: list and read (firmware.read, a supplier its own), and the two-step
 * upload (firmware.manage, supplier admins). The image bytes are the one request body this
 * API does not parse: it is passed through as a stream and checked block by block as it is
 * written to disk, so an image is never held whole in memory.
 */
export const firmwareImageRoutes: Routes = async (app, deps) => {
  const { pool, config } = deps;

  // Registered in this plugin only (Fastify encapsulation): no other route accepts raw bytes.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.get(
    '/api/firmware/images',
    {
      schema: {
        tags: ['firmware'],
        summary: 'Firmware images of the supplier, newest first',
        response: { 200: fwImagesResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'firmware.read');
      return { items: await listImages(pool, actor) };
    },
  );

  app.get(
    '/api/firmware/images/:id',
    {
      schema: {
        tags: ['firmware'],
        summary: 'One firmware image',
        params: fwImageParams,
        response: { 200: fwImage, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'firmware.read');
      const img = await getImage(pool, actor, req.params.id);
      if (!img) throw new AppError('NOT_FOUND', 'no such image');
      return img;
    },
  );

  app.post(
    '/api/firmware/uploads',
    {
      schema: {
        tags: ['firmware'],
        summary:
          'Upload step 1: the signed manifest (as `npm run firmware -- sign` wrote it); checked before any byte of the image moves',
        body: fwUploadBody,
        response: {
          201: fwUploadResponse,
          ...errorResponses,
          ...bodyErrorResponses,
          ...uploadErrorResponses,
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'firmware.manage');
      const r = await beginUpload(pool, config, whoOf(req), actor, req.body);
      reply.code(201);
      return r;
    },
  );

  app.put(
    '/api/firmware/uploads/:uploadId',
    {
      // The CSRF wall admits application/octet-stream here (see app.ts): a cross-site form
      // cannot send it and a cross-site fetch with it needs a preflight this API never grants.
      config: { rawUpload: true },
      schema: {
        tags: ['firmware'],
        summary:
          'Upload step 2: the image bytes (application/octet-stream), checked block by block against the manifest of step 1',
        params: fwUploadParams,
        consumes: ['application/octet-stream'],
        body: z.unknown().describe('The image bytes (application/octet-stream)'),
        response: {
          201: fwImage,
          ...errorResponses,
          ...uploadErrorResponses,
          415: errorBody.describe('Not sent as application/octet-stream (UNSUPPORTED_MEDIA_TYPE)'),
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'firmware.manage');
      const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (ct !== 'application/octet-stream' || !isStream(req.body))
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'send the image as application/octet-stream');
      const declared = Number(req.headers['content-length'] ?? NaN);
      if (declared > config.firmwareMaxBytes)
        throw new AppError(
          'PAYLOAD_TOO_LARGE',
          `the largest image this head-end takes is ${config.firmwareMaxBytes} bytes`,
        );
      const img = await receiveImage(pool, config, whoOf(req), actor, req.params.uploadId, req.body);
      reply.code(201);
      return img;
    },
  );
};

declare module 'fastify' {
  interface FastifyContextConfig {
    /** #10 B a route whose body is raw bytes (application/octet-stream), passed through as a stream. */
    rawUpload?: boolean;
  }
}

function isStream(b: unknown): b is Readable {
  return typeof b === 'object' && b !== null && typeof (b as Readable).pipe === 'function';
}
