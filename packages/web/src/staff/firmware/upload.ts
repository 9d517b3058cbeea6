// The image upload's two steps, apart from the page so the browser test and the panel share
// them: the manifest as JSON (step 1), then the image's bytes as they are (step 2).
import type { ErrorBody, FwImage, FwUploadBody, FwUploadResponse } from '@kilowire/contract';
import { api, ApiError } from '../../api.ts';

/** The facts of a manifest the CLI wrote, read in the browser to show before anything moves. */
export interface ManifestFacts {
  version: string;
  sequence: number;
  hardwareClass: string;
  size: number;
  sha256: string;
  blockSize: number;
  blocks: number;
}

/**
 * Read the `*.manifest.json` that `npm run firmware -- sign` wrote ({manifest, signature}).
 * Only a first look so a wrong file is caught before anything moves; the server checks the
 * signature and the schema (the browser holds no key and trusts nothing here).
 */
export function readManifestFile(text: string): { body: FwUploadBody; facts: ManifestFacts } | string {
  let outer: unknown;
  try {
    outer = JSON.parse(text);
  } catch {
    return 'This file is not JSON. Pick the .manifest.json file the signing tool wrote next to the image.';
  }
  const o = outer as Partial<Record<'manifest' | 'signature', unknown>>;
  if (typeof o?.manifest !== 'string' || typeof o.signature !== 'string')
    return 'This file has no signed manifest in it. Pick the .manifest.json file the signing tool wrote (it holds "manifest" and "signature").';
  let m: Partial<Record<keyof ManifestFacts | 'blockHashes', unknown>>;
  try {
    m = JSON.parse(o.manifest) as typeof m;
  } catch {
    return 'The manifest inside this file is not JSON: the file was changed after signing.';
  }
  if (
    typeof m.version !== 'string' ||
    typeof m.sequence !== 'number' ||
    typeof m.hardwareClass !== 'string' ||
    typeof m.size !== 'number' ||
    typeof m.sha256 !== 'string' ||
    typeof m.blockSize !== 'number'
  )
    return 'The manifest lacks its version, sequence, hardware class, size, hash or block size.';
  return {
    body: { manifest: o.manifest, signature: o.signature },
    facts: {
      version: m.version,
      sequence: m.sequence,
      hardwareClass: m.hardwareClass,
      size: m.size,
      sha256: m.sha256,
      blockSize: m.blockSize,
      blocks: Array.isArray(m.blockHashes) ? m.blockHashes.length : Math.ceil(m.size / m.blockSize),
    },
  };
}

/** Step 1: the signed manifest; the server checks the signature before any byte moves. */
export function startUpload(body: FwUploadBody): Promise<FwUploadResponse> {
  return api<FwUploadResponse>('POST', '/api/firmware/uploads', body);
}

/**
 * Step 2: the image's bytes, streamed as they are (application/octet-stream). XMLHttpRequest
 * rather than fetch, because only it reports upload progress.
 */
export function putImage(
  uploadId: string,
  file: Blob,
  onProgress: (sent: number, total: number) => void,
): { done: Promise<FwImage>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const done = new Promise<FwImage>((resolve, reject) => {
    xhr.open('PUT', `/api/firmware/uploads/${encodeURIComponent(uploadId)}`);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('accept', 'application/json');
    xhr.responseType = 'text';
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () =>
      reject(new ApiError(0, 'NETWORK', 'Could not reach Kilowire. Check your connection and try again.'));
    xhr.onabort = () => reject(new ApiError(0, 'CLIENT', 'Upload stopped.'));
    xhr.onload = () => {
      let data: unknown;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : undefined;
      } catch {
        data = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(data as FwImage);
      const e = (data as { error?: Partial<ErrorBody['error']> } | undefined)?.error;
      reject(
        new ApiError(
          xhr.status,
          e?.code ?? `HTTP_${xhr.status}`,
          e?.message ?? `Upload failed (${xhr.status})`,
          e?.issues ?? [],
        ),
      );
    };
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}
