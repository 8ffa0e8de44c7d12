# PyAV is loaded before any test module imports decord (through reader.decode): decord bundles
# an older libvpx whose symbols would otherwise shadow the ones PyAV's vp8/vp9 encoders need.
import av  # noqa: F401
