CREATE INDEX `feedback_project_seq_idx` ON `feedback` (`project_id`,`seq`);--> statement-breakpoint
CREATE INDEX `feedback_project_prompt_idx` ON `feedback` (`project_id`,`prompt`);