"""Image handling shared by ingestion and processing (Pillow and libvips), free of any service logic.

Modules are imported one by one (`from shared.imaging.decode import decode`) so a service pays only
for what it uses: decode, exif, renditions, watermark, colors, placeholder (processing); inspect,
phash (ingestion).
"""
