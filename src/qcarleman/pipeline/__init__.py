"""The end-to-end pipeline behind ``qcarleman demo`` and ``qcarleman hybrid``: dense training →
pruning → sparse training → spectra → hybrid vs classical → shot sweep → estimate, each stage
resumable, every output path owned by one layout object."""
