--- lightning.amp: automatic mixed precision's loss scaler (torch.amp): L.amp.GradScaler, which the
-- Trainer's precision = "16-mixed" uses (lightning/precision/fp16_mixed.lua). See docs/gpu.md.
return {GradScaler = require "lightning.amp.grad_scaler"}
