CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`prefix` text NOT NULL,
	`key_hash` text NOT NULL,
	`scopes` text NOT NULL,
	`created_at` integer NOT NULL,
	`revoked_at` integer,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_key_hash_unique` ON `api_keys` (`key_hash`);--> statement-breakpoint
CREATE INDEX `api_keys_project_idx` ON `api_keys` (`project_id`);--> statement-breakpoint
CREATE TABLE `feedback` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`project_id` text NOT NULL,
	`type` text NOT NULL,
	`generation_id` text,
	`rejected_generation_id` text,
	`prompt` text NOT NULL,
	`response` text NOT NULL,
	`rejected` text,
	`correction` text,
	`value` real,
	`name` text,
	`comment` text,
	`user_id` text,
	`metadata` text,
	`body_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`generation_id`) REFERENCES `generations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`rejected_generation_id`) REFERENCES `generations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `feedback_project_id_uq` ON `feedback` (`project_id`,`id`);--> statement-breakpoint
CREATE INDEX `feedback_project_type_created_idx` ON `feedback` (`project_id`,`type`,`created_at`);--> statement-breakpoint
CREATE INDEX `feedback_project_created_idx` ON `feedback` (`project_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `feedback_generation_idx` ON `feedback` (`generation_id`);--> statement-breakpoint
CREATE TABLE `generations` (
	`id` text PRIMARY KEY NOT NULL,
	`project_id` text NOT NULL,
	`request_id` text NOT NULL,
	`policy_version` integer NOT NULL,
	`prompt` text NOT NULL,
	`output` text NOT NULL,
	`params` text NOT NULL,
	`prompt_tokens` integer NOT NULL,
	`completion_tokens` integer NOT NULL,
	`finish_reason` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `generations_project_created_idx` ON `generations` (`project_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `generations_request_idx` ON `generations` (`request_id`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`queue` text NOT NULL,
	`payload` text NOT NULL,
	`dedupe_key` text,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`max_attempts` integer NOT NULL,
	`run_at` integer NOT NULL,
	`locked_by` text,
	`locked_until` integer,
	`last_error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `jobs_queue_status_run_at_idx` ON `jobs` (`queue`,`status`,`run_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `jobs_queue_dedupe_uq` ON `jobs` (`queue`,`dedupe_key`) WHERE status in ('ready', 'leased');--> statement-breakpoint
CREATE TABLE `policies` (
	`project_id` text NOT NULL,
	`version` integer NOT NULL,
	`parent_version` integer,
	`artifact_uri` text NOT NULL,
	`sha256` text NOT NULL,
	`status` text NOT NULL,
	`metrics` text DEFAULT '{}' NOT NULL,
	`training_run_id` text,
	`created_at` integer NOT NULL,
	`activated_at` integer,
	PRIMARY KEY(`project_id`, `version`),
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `policies_project_status_idx` ON `policies` (`project_id`,`status`);--> statement-breakpoint
CREATE TABLE `projects` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`config` text DEFAULT '{}' NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `projects_name_unique` ON `projects` (`name`);--> statement-breakpoint
CREATE TABLE `reward_models` (
	`project_id` text NOT NULL,
	`version` integer NOT NULL,
	`parent_version` integer,
	`artifact_uri` text NOT NULL,
	`sha256` text NOT NULL,
	`metrics` text DEFAULT '{}' NOT NULL,
	`training_run_id` text,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`project_id`, `version`),
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `run_metrics` (
	`run_id` text NOT NULL,
	`stage` text NOT NULL,
	`step` integer NOT NULL,
	`name` text NOT NULL,
	`value` real NOT NULL,
	PRIMARY KEY(`run_id`, `stage`, `step`, `name`),
	FOREIGN KEY (`run_id`) REFERENCES `training_runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `training_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`project_id` text NOT NULL,
	`status` text NOT NULL,
	`trigger` text NOT NULL,
	`stage` text,
	`progress` real DEFAULT 0 NOT NULL,
	`eta_s` real,
	`config` text DEFAULT '{}' NOT NULL,
	`metrics` text DEFAULT '{}' NOT NULL,
	`feedback_watermark` integer,
	`policy_version` integer,
	`error` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `training_runs_project_created_idx` ON `training_runs` (`project_id`,`created_at`);