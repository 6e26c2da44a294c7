"""Flask blueprints: they translate HTTP (forms, JSON) to calls and replies to pages; nothing else."""
