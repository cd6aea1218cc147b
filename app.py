"""python app.py [--model NAME|DIR] [--host 127.0.0.1] [--port 7860]: open the latent-space explorer."""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

if __name__ == "__main__":
    from explorer.ui import main
    raise SystemExit(main())
