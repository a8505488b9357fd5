package localaws_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// TestMoto starts moto and checks the two things the other tests rely on:
// it serves SQS at its one endpoint, and an AssumeRole into another
// account's role gives credentials that act in that account.
func TestMoto(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := localaws.StartMoto(ctx, localaws.MotoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	cfg := m.Config("us-east-1")

	q := sqs.NewFromConfig(cfg)
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("moto-test")})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String("hello")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: out.QueueUrl})
	if err != nil || len(got.Messages) != 1 || aws.ToString(got.Messages[0].Body) != "hello" {
		t.Fatalf("ReceiveMessage: got %v, %v; want one message hello", got, err)
	}

	st := sts.NewFromConfig(cfg)
	id, err := st.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if got, want := aws.ToString(id.Account), m.Account(); got != want {
		t.Errorf("caller account: got %s, want %s", got, want)
	}
	const member = "444455556666"
	role, err := st.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::" + member + ":role/kms-autotagger/member"),
		RoleSessionName: aws.String("moto-test"),
	})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	c := role.Credentials
	assumed := cfg.Copy()
	assumed.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	id, err = sts.NewFromConfig(assumed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity as the assumed role: %v", err)
	}
	if got := aws.ToString(id.Account); got != member {
		t.Errorf("assumed-role caller account: got %s, want %s", got, member)
	}

	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.ListQueues(ctx, &sqs.ListQueuesInput{}); err == nil {
		t.Error("ListQueues after Stop: got no error, want a connection error")
	}
}
