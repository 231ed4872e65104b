DROP INDEX `feedback_generation_idx`;--> statement-breakpoint
CREATE INDEX `feedback_generation_idx` ON `feedback` (`generation_id`) WHERE "feedback"."generation_id" IS NOT NULL;