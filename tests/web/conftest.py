"""The pages in real Chromium (and their server-side rendering)."""
