import { useId, useMemo, useRef, useState, type FormEvent } from 'react';
import type { FwImage, FwImagesResponse, FwUploadResponse } from '@kilowire/contract';
import { ApiError } from '../../api.ts';
import { ErrorMessage, Loading, useApi, useSession } from '../../common.tsx';
import { Link } from '../../router.tsx';
import { DataTable, EmptyState, PageHeader, useToast, type ColumnDef } from '../../ui/index.ts';
import { shortTime } from '../supply/words.ts';
import { putImage, readManifestFile, startUpload, type ManifestFacts } from './upload.ts';
import { firmwareErrorText, formatBytes, shortSha } from './words.ts';
import './firmware.css';

/**
 * The supplier's firmware images: every signed build uploaded, with what a campaign needs to
 * know (version, security sequence, hardware class, size, hash), and for supplier admins the
 * upload panel. Images are immutable: a new build is a new upload.
 */
export default function FirmwarePage() {
  const { me } = useSession();
  const canManage = me.capabilities.includes('firmware.manage');
  const list = useApi<FwImagesResponse>('/api/firmware/images');
  // The upload is an occasional task: folded behind a button, open while there is no image yet.
  const [uploadOpen, setUploadOpen] = useState<boolean | null>(null);
  const showUpload = canManage && (uploadOpen ?? list.data?.items.length === 0);
  const columns = useMemo<ColumnDef<FwImage, unknown>[]>(
    () => [
      {
        id: 'version',
        header: 'Version',
        accessorKey: 'version',
        cell: ({ row }) => (
          <>
            <strong>{row.original.version}</strong>
            {row.original.notes && <div className="muted fw-wrap">{row.original.notes}</div>}
          </>
        ),
      },
      // Short headers: the table fits a 1280 px console beside the navigation.
      { id: 'sequence', header: 'Sequence', accessorKey: 'sequence' },
      { id: 'class', header: 'Hardware', accessorKey: 'hardwareClass' },
      {
        id: 'size',
        header: 'Size',
        accessorKey: 'size',
        cell: ({ row }) => (
          <>
            {formatBytes(row.original.size)}
            <div className="muted">{row.original.blocks} blocks</div>
          </>
        ),
      },
      {
        id: 'sha',
        header: 'SHA-256',
        accessorKey: 'sha256',
        enableSorting: false,
        cell: ({ row }) => (
          <code className="fw-sha" title={row.original.sha256}>
            {shortSha(row.original.sha256)}…
          </code>
        ),
      },
      {
        id: 'uploaded',
        header: 'Uploaded',
        accessorKey: 'createdAt',
        cell: ({ row }) => (
          <>
            {shortTime(row.original.createdAt)}
            <div className="muted">by {row.original.uploadedBy ?? 'a former colleague'}</div>
          </>
        ),
      },
      {
        id: 'campaigns',
        header: 'Campaigns',
        accessorKey: 'campaigns',
        cell: ({ row }) =>
          row.original.campaigns > 0 ? (
            <Link href="/firmware/campaigns">
              {row.original.campaigns} campaign{row.original.campaigns === 1 ? '' : 's'}
            </Link>
          ) : canManage ? (
            <Link href={`/firmware/campaigns/new?image=${row.original.id}`}>
              Start a campaign<span className="visually-hidden"> with {row.original.version}</span>
            </Link>
          ) : (
            <span className="muted">None yet</span>
          ),
      },
    ],
    [canManage],
  );
  return (
    <div className="fw-page">
      <PageHeader
        title="Firmware"
        description="Signed firmware images for your meters. A campaign takes one to the fleet in stages, starting with a canary."
        actions={
          <>
            {canManage && (
              <button
                type="button"
                className="btn btn-secondary"
                aria-expanded={showUpload}
                aria-controls="fw-upload"
                onClick={() => setUploadOpen(!showUpload)}
              >
                {showUpload ? 'Hide upload' : 'Upload an image'}
              </button>
            )}
            <Link className="btn btn-secondary" href="/firmware/campaigns">
              Campaigns
            </Link>
            {canManage && (
              <Link className="btn" href="/firmware/campaigns/new">
                New campaign
              </Link>
            )}
          </>
        }
      />
      {showUpload && (
        <UploadPanel
          onUploaded={() => {
            // Stay open: the panel says what was uploaded and offers the next step.
            setUploadOpen(true);
            list.reload();
          }}
        />
      )}
      <section aria-labelledby="fw-images-h">
        <h2 id="fw-images-h">Images</h2>
        {list.error ? (
          <ErrorMessage error={list.error} retry={list.reload} />
        ) : !list.data ? (
          <Loading what="firmware images" />
        ) : (
          <DataTable
            caption="Firmware images, newest first"
            columns={columns}
            rows={list.data.items}
            rowKey={(r) => String(r.id)}
            busy={list.loading}
            empty={
              <EmptyState title="No firmware images yet">
                {canManage ? (
                  <p>
                    Sign a build with <code>npm run firmware -- sign</code> and upload the image and its{' '}
                    <code>.manifest.json</code> with the panel above.
                  </p>
                ) : (
                  <p>A supplier admin uploads signed images; they appear here.</p>
                )}
              </EmptyState>
            }
          />
        )}
      </section>
    </div>
  );
}

type Step =
  | { at: 'idle' }
  | { at: 'checking' }
  | { at: 'uploading'; upload: FwUploadResponse; sent: number; total: number }
  | { at: 'done'; image: FwImage };

/**
 * Upload a signed image in two steps: the manifest first (the server refuses a bad signature
 * or manifest before any byte of the image moves), then the image streamed with a progress
 * bar (the server checks every block against the manifest and refuses a changed, truncated or
 * extended file, keeping nothing).
 */
function UploadPanel({ onUploaded }: { onUploaded: () => void }) {
  const id = useId();
  const toast = useToast();
  const [manifest, setManifest] = useState<ReturnType<typeof readManifestFile> | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const [notes, setNotes] = useState('');
  const [step, setStep] = useState<Step>({ at: 'idle' });
  const [error, setError] = useState<string | null>(null);
  const abort = useRef<(() => void) | null>(null);
  const formRef = useRef<HTMLFormElement>(null);

  const ok = manifest !== null && typeof manifest !== 'string' ? manifest : null;
  const facts: ManifestFacts | null = ok?.facts ?? null;
  const sizeProblem =
    facts && file && file.size !== facts.size
      ? `The image file is ${file.size.toLocaleString('en-GB')} bytes but the manifest names ${facts.size.toLocaleString('en-GB')}: pick the file that was signed.`
      : null;
  const busy = step.at === 'checking' || step.at === 'uploading';
  const ready = ok !== null && file !== null && sizeProblem === null && !busy;

  const pickManifest = (f: File | undefined): void => {
    setError(null);
    if (step.at === 'done') setStep({ at: 'idle' });
    if (!f) return setManifest(null);
    f.text().then(
      (t) => setManifest(readManifestFile(t)),
      () => setManifest('This file could not be read.'),
    );
  };

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (!ready || !ok || !file) return;
    setError(null);
    setStep({ at: 'checking' });
    const fail = (err: unknown, which: string): void => {
      setStep({ at: 'idle' });
      abort.current = null;
      setError(`${which}: ${err instanceof ApiError ? firmwareErrorText(err) : String(err)}`);
    };
    startUpload({ ...ok.body, ...(notes.trim() ? { notes: notes.trim() } : {}) }).then(
      (upload) => {
        setStep({ at: 'uploading', upload, sent: 0, total: file.size });
        const put = putImage(upload.uploadId, file, (sent, total) =>
          setStep({ at: 'uploading', upload, sent, total }),
        );
        abort.current = put.abort;
        put.done.then(
          (image) => {
            abort.current = null;
            setStep({ at: 'done', image });
            setManifest(null);
            setFile(null);
            setNotes('');
            formRef.current?.reset();
            toast.show(`Image ${image.version} uploaded and checked.`);
            onUploaded();
          },
          (err: unknown) => fail(err, 'The image was refused'),
        );
      },
      (err: unknown) => fail(err, 'The manifest was refused'),
    );
  };

  return (
    <section id="fw-upload" className="card fw-upload" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Upload a signed image</h2>
      <p className="muted">
        Pick the image and the <code>.manifest.json</code> that <code>npm run firmware -- sign</code> wrote
        next to it. The signature is checked first; then every block of the image is checked against the
        manifest as it arrives.
      </p>
      <form ref={formRef} onSubmit={submit} noValidate>
        <div className="fw-upload-grid">
          <div className={`field${typeof manifest === 'string' ? ' field-error' : ''}`}>
            <label htmlFor={`${id}-manifest`}>Signed manifest (.manifest.json)</label>
            {typeof manifest === 'string' && (
              <p className="error-text" id={`${id}-manifest-err`}>
                {manifest}
              </p>
            )}
            <input
              id={`${id}-manifest`}
              type="file"
              accept=".json,application/json"
              disabled={busy}
              aria-describedby={typeof manifest === 'string' ? `${id}-manifest-err` : undefined}
              onChange={(e) => pickManifest(e.target.files?.[0])}
            />
          </div>
          <div className={`field${sizeProblem ? ' field-error' : ''}`}>
            <label htmlFor={`${id}-image`}>Image file</label>
            {sizeProblem && (
              <p className="error-text" id={`${id}-image-err`}>
                {sizeProblem}
              </p>
            )}
            <input
              id={`${id}-image`}
              type="file"
              disabled={busy}
              aria-describedby={sizeProblem ? `${id}-image-err` : undefined}
              onChange={(e) => {
                setError(null);
                if (step.at === 'done') setStep({ at: 'idle' });
                setFile(e.target.files?.[0] ?? null);
              }}
            />
          </div>
        </div>
        {facts && (
          <dl className="fw-manifest-facts" aria-label="What the manifest says">
            <dt>Version</dt>
            <dd>{facts.version}</dd>
            <dt>Security sequence</dt>
            <dd>{facts.sequence}</dd>
            <dt>Hardware class</dt>
            <dd>{facts.hardwareClass}</dd>
            <dt>Size</dt>
            <dd>
              {formatBytes(facts.size)} in {facts.blocks} blocks of {formatBytes(facts.blockSize)}
            </dd>
            <dt>SHA-256</dt>
            <dd>
              <code className="fw-sha">{facts.sha256}</code>
            </dd>
          </dl>
        )}
        <div className="field">
          <label htmlFor={`${id}-notes`}>Notes (optional)</label>
          <p className="hint" id={`${id}-notes-hint`}>
            What changed in this build, for whoever plans a campaign with it.
          </p>
          <textarea
            id={`${id}-notes`}
            rows={2}
            maxLength={500}
            value={notes}
            disabled={busy}
            aria-describedby={`${id}-notes-hint`}
            onChange={(e) => setNotes(e.target.value)}
          />
        </div>
        {step.at === 'uploading' && (
          <div className="field" role="status">
            <label htmlFor={`${id}-progress`}>
              Uploading {step.upload.version}: {Math.floor((step.sent / Math.max(1, step.total)) * 100)} %
            </label>
            <progress id={`${id}-progress`} max={Math.max(1, step.total)} value={step.sent} />
          </div>
        )}
        {step.at === 'checking' && (
          <p className="muted" role="status">
            Checking the signature…
          </p>
        )}
        {error && (
          <div className="notice notice-error" role="alert">
            <p>{error}</p>
          </div>
        )}
        {step.at === 'done' && (
          <div className="notice notice-info" role="status">
            <p>
              Image <strong>{step.image.version}</strong> (sequence {step.image.sequence},{' '}
              {step.image.hardwareClass}) is uploaded and every block checked.{' '}
              <Link href={`/firmware/campaigns/new?image=${step.image.id}`}>Start a campaign with it</Link>.
            </p>
          </div>
        )}
        <div className="form-actions">
          <button type="submit" className="btn" disabled={!ready}>
            {busy ? 'Uploading…' : 'Upload image'}
          </button>
          {step.at === 'uploading' && (
            <button type="button" className="btn btn-secondary" onClick={() => abort.current?.()}>
              Stop
            </button>
          )}
        </div>
      </form>
    </section>
  );
}
