ALTER TABLE `training_runs` ADD `job_id` text;--> statement-breakpoint
CREATE UNIQUE INDEX `training_runs_one_active_uq` ON `training_runs` (`project_id`) WHERE status in ('queued', 'running');