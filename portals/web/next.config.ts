import type { NextConfig } from "next";

// Static export: the pages are plain files served by devhost locally and by Front Door on Azure;
// every piece of data comes from /api in the browser.
const config: NextConfig = {
  output: "export",
  trailingSlash: true,
  images: { unoptimized: true },
  reactStrictMode: true,
  poweredByHeader: false,
};

export default config;
