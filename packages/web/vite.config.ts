import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The API is served on the same origin under /api in production. In development (and for
// `vite preview`) proxy it to a running server: KW_API=http://127.0.0.1:8090 npm run dev -w @kilowire/web
const api = process.env.KW_API ?? 'http://127.0.0.1:8080';
const proxy = { '/api': { target: api, changeOrigin: false } };

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // scripts/size.ts reads the manifest to measure the JavaScript the first page loads.
    manifest: true,
    target: 'es2022',
  },
  server: { host: '127.0.0.1', port: 5173, strictPort: false, proxy },
  preview: { host: '127.0.0.1', port: 4173, strictPort: false, proxy },
});
