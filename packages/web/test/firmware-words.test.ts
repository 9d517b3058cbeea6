import { describe, expect, it } from 'vitest';
import { ApiError } from '../src/api.ts';
import { countsText } from '../src/staff/firmware/StateBar.tsx';
import { parseSerials } from '../src/staff/firmware/NewCampaignPage.tsx';
import { readManifestFile } from '../src/staff/firmware/upload.ts';
import {
  eventLabel,
  firmwareErrorText,
  formatBytes,
  formatSeconds,
  stageLabel,
} from '../src/staff/firmware/words.ts';

const MANIFEST = JSON.stringify({
  version: '1.2.0',
  sequence: 3,
  hardwareClass: 'KW-1P-100A',
  size: 40_000,
  sha256: 'ab'.repeat(32),
  blockSize: 4096,
  blockHashes: Array.from({ length: 10 }, () => 'cd'.repeat(32)),
});

describe('the manifest file the signing tool writes', () => {
  it('reads its facts and keeps the signed text exactly as it is', () => {
    const r = readManifestFile(JSON.stringify({ manifest: MANIFEST, signature: 'c2ln' }, null, 2));
    expect(r).toEqual({
      body: { manifest: MANIFEST, signature: 'c2ln' },
      facts: {
        version: '1.2.0',
        sequence: 3,
        hardwareClass: 'KW-1P-100A',
        size: 40_000,
        sha256: 'ab'.repeat(32),
        blockSize: 4096,
        blocks: 10,
      },
    });
  });

  it('says what is wrong with another file, in words', () => {
    expect(readManifestFile('not json')).toMatch(/not JSON. Pick the .manifest.json file/);
    expect(readManifestFile(MANIFEST)).toMatch(/no signed manifest in it/);
    expect(readManifestFile(JSON.stringify({ manifest: '{oops', signature: 'x' }))).toMatch(
      /changed after signing/,
    );
    expect(readManifestFile(JSON.stringify({ manifest: '{"version":"1"}', signature: 'x' }))).toMatch(
      /lacks its version, sequence/,
    );
  });
});

describe('pasted serials', () => {
  it('split on lines, commas, spaces and semicolons, upper-cased, each once', () => {
    expect(parseSerials(' kw000001,KW000002\nKW000002;  KW000003\t\n')).toEqual([
      'KW000001',
      'KW000002',
      'KW000003',
    ]);
    expect(parseSerials(' \n ,')).toEqual([]);
  });
});

describe('words', () => {
  it('names the stages, sizes and times', () => {
    expect(stageLabel(0)).toBe('Canary');
    expect(stageLabel(2)).toBe('Wave 2');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(40_000)).toBe('39.1 KB');
    expect(formatBytes(256 * 1024)).toBe('256 KB');
    expect(formatBytes(3 * 1024 * 1024 + 100_000)).toBe('3.1 MB');
    expect(formatSeconds(90)).toBe('90 s');
    expect(formatSeconds(600)).toBe('10 min');
    expect(formatSeconds(86_400)).toBe('24 h');
  });

  it('says the progress bar in words, groups in the order a meter moves through them', () => {
    expect(countsText({ pending: 6, downloading: 1, activating: 2, confirmed: 2, reverted: 1 }, 12)).toBe(
      '6 waiting, 1 downloading, 2 activating, 2 confirmed, 1 failed of 12 meters',
    );
    expect(countsText({ refused: 1, verify_failed: 2, not_returned: 1 }, 1)).toBe('4 failed of 1 meter');
    expect(countsText({}, 0)).toBe('No meters');
  });

  it('names timeline entries, readable even when new', () => {
    expect(eventLabel('halted')).toBe('Halted itself');
    expect(eventLabel('carried_over')).toBe('Skipped meters carried over');
    expect(eventLabel('feeder_window_moved')).toBe('Feeder window moved');
  });

  it('turns the API refusals into plain words, keeping the specifics', () => {
    expect(
      firmwareErrorText(new ApiError(422, 'FW_HASH_MISMATCH', 'block 5 (of 10) does not match its hash')),
    ).toBe(
      'The image file does not match its manifest: it is not the file that was signed, or it was damaged on the way. Nothing was stored. (block 5 (of 10) does not match its hash)',
    );
    expect(firmwareErrorText(new ApiError(403, 'FORBIDDEN', 'not permitted'))).toBe(
      'Your role may not do this.',
    );
    expect(firmwareErrorText(new ApiError(409, 'CONFLICT', 'the campaign is halted, not running'))).toBe(
      'the campaign is halted, not running',
    );
  });
});
