import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// The build goes into the Python package so the wheel ships it and users need no node.
export default defineConfig({
  plugins: [react()],
  base: './',
  build: {
    outDir: '../regions_cli/gui_dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
  server: {
    host: '127.0.0.1',
    // `npm run dev` edits against a running `regions gui --port 8765 --no-browser FILE`.
    // The server only answers its own origin, so the proxy presents requests as its own.
    proxy: {
      '/api': {
        target: 'http://127.0.0.1:8765',
        changeOrigin: true,
        configure: (proxy) => proxy.on('proxyReq', (request) => request.removeHeader('origin')),
      },
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
