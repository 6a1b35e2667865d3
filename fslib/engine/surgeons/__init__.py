"""The gradient-surgery variants, one small module each: a fslib.engine.surgery.Surgeon subclass whose `apply` is
its arithmetic, registered by name in fslib.core.surgeons.SURGEONS."""
