"""The pages in real Chromium (and their server-side rendering).

The fixtures every browser test module may ask for (the live server and its data, Chromium, a
tab, a tampering switch) are :mod:`tests.web.browser_site`'s; a module can define its own ``site``.
"""

from tests.web.browser_site import browser, site, tab, tampered  # noqa: F401  (fixtures)
