// Model artifacts (config, tokenizer, safetensors, ONNX, report) live in one versioned bucket. Versioning plus
// RETAIN means neither an overwrite nor `cdk destroy` can lose a published policy; non-current versions expire
// after a while so retries and re-uploads do not grow the bill forever.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface ArtifactsBucketProps {
  /** Days a non-current object version is kept. */
  noncurrentVersionDays: number;
}

export class ArtifactsBucket extends Construct {
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: ArtifactsBucketProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays),
          // A worker killed mid-upload leaves parts that are billed but invisible.
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
    });
  }
}
