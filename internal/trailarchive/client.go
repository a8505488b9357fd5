package trailarchive

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// NewS3Client returns the S3 client of bucket, made from cfg (its
// credentials, retryer and endpoint settings, AWS_ENDPOINT_URL_S3 among
// them) in the bucket's own region, which S3 requires: HeadBucket in
// cfg's region tells it, in its answer or in the redirect of a bucket
// elsewhere (x-amz-bucket-region). A client with a custom endpoint (an S3
// implementation other than AWS's) addresses buckets by path.
func NewS3Client(ctx context.Context, cfg aws.Config, bucket string) (*s3.Client, error) {
	pathStyle := func(o *s3.Options) {
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
		// Log files carry no checksum of their own: S3's answers are
		// checked where they have one, without a log line where not.
		o.DisableLogOutputChecksumValidationSkipped = true
	}
	probe := s3.NewFromConfig(cfg, pathStyle)
	region := cfg.Region
	out, err := probe.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	switch {
	case err == nil:
		if r := aws.ToString(out.BucketRegion); r != "" {
			region = r
		}
	default:
		var resp *awshttp.ResponseError
		if !errors.As(err, &resp) || resp.Response == nil {
			return nil, fmt.Errorf("finding the region of bucket %s (s3:ListBucket): %w", bucket, err)
		}
		r := resp.Response.Header.Get("X-Amz-Bucket-Region")
		if r == "" || resp.Response.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("finding the region of bucket %s (s3:ListBucket): %w", bucket, err)
		}
		region = r
	}
	if region == cfg.Region {
		return probe, nil
	}
	return s3.NewFromConfig(cfg, pathStyle, func(o *s3.Options) { o.Region = region }), nil
}
