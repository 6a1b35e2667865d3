"""Layer 4, batches: parameter files, planning (fslib.batch.planning), preflight, cost, the workers and executors
(local, Slurm) that run jobs in processes of their own. It imports the analysis layer only to build the reports
when a batch ends."""
