"""Turn an AWS SAM template into CloudFormation with the real SAM translator.

    samtransform.py TEMPLATE [--region REGION] [--code-uri s3://BUCKET/KEY]
                             [--parameter NAME=VALUE ...]
    samtransform.py --serve

prints the CloudFormation template (JSON) that aws-sam-translator, the
library behind `sam validate`, `sam build` and `sam deploy` and the
AWS::Serverless-2016-10-31 transform, makes of TEMPLATE for the given
parameter values. A template without the transform comes back as it is, in
JSON. The pinned translator is in tools/requirements.txt; run this with the
python of the venv `make tools` makes (.tools/venv/bin/python).

--serve translates many templates in one process (importing the translator
takes most of a run): each line of stdin is a JSON request
{"template": PATH, "parameters": {NAME: VALUE}, "region": REGION,
"code_uri": URI} (all but template optional), and each answer is one line
of stdout, {"template": {...}} or {"error": MESSAGE}. It ends at the end of
stdin.

It works offline and needs no AWS credentials or configuration:

- The region (default us-east-1) is given, not read from a boto3 session;
  the translator derives AWS::Region and AWS::Partition from it.
- The managed policy map, which the translator otherwise loads from IAM's
  ListPolicies to resolve policy names in a function's Policies, is the
  fixed MANAGED_POLICIES below.
- --code-uri does what `sam package` does before a deployment: a function's
  local CodeUri (such as ".") becomes that S3 location, which the translator
  turns into the AWS::Lambda::Function's Code.

On an invalid template it prints the translator's messages to stderr and
exits with status 1; on bad arguments, status 2.
"""

import argparse
import json
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.arn_generator import ArnGenerator
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

# AWS managed policies a function's Policies may name, by name, as the
# translator's managed policy map holds them ({partition} is the region's).
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:{partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaVPCAccessExecutionRole": "arn:{partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    "AWSXRayDaemonWriteAccess": "arn:{partition}:iam::aws:policy/AWSXRayDaemonWriteAccess",
}


class _Region:
    """What the translator reads of a boto3 session: its region only."""

    def __init__(self, region_name):
        self.region_name = region_name


def _parameter(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _package(template, code_uri):
    """Point every function's local CodeUri at code_uri, as `sam package` does."""
    for resource in (template.get("Resources") or {}).values():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.setdefault("Properties", {})
        uri = props.get("CodeUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            props["CodeUri"] = code_uri


def transform(template, parameters, region, code_uri=None):
    """Return the CloudFormation translation of the SAM template (a dict)."""
    if code_uri:
        _package(template, code_uri)
    partition = ArnGenerator.get_partition_name(region)
    policies = {name: arn.format(partition=partition) for name, arn in MANAGED_POLICIES.items()}
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), boto_session=_Region(region))
    values = dict(parameters)
    values.setdefault("AWS::Region", region)
    values.setdefault("AWS::Partition", partition)
    out = translator.translate(template, parameter_values=values, get_managed_policy_map=lambda: policies)
    # The translator's metrics go to a publisher that drops them; publishing
    # keeps it from warning about them on exit.
    translator.metrics.publish()
    return out


def _load(path):
    with open(path, encoding="utf-8") as f:
        return yaml_parse(f.read())


def _errors(path, e):
    return "\n".join(f"{path}: {cause.message}" for cause in e.causes)


def serve(stdin, stdout):
    """Answer the JSON requests of --serve, one a line, until the end of stdin."""
    for line in stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            path = req["template"]
            out = {"template": transform(_load(path), (req.get("parameters") or {}).items(),
                                         req.get("region") or "us-east-1", req.get("code_uri"))}
        except InvalidDocumentException as e:
            out = {"error": _errors(path, e)}
        except Exception as e:  # noqa: BLE001 - every failure is the caller's answer
            out = {"error": f"{type(e).__name__}: {e}"}
        stdout.write(json.dumps(out, sort_keys=True, default=str) + "\n")
        stdout.flush()
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="Translate an AWS SAM template to CloudFormation JSON, offline.")
    ap.add_argument("template", nargs="?", help="path of the SAM template (YAML or JSON)")
    ap.add_argument("--serve", action="store_true", help="answer JSON requests on stdin, one a line (see above)")
    ap.add_argument("--region", default="us-east-1", help="region of the stack (default us-east-1)")
    ap.add_argument("--code-uri", help="s3://BUCKET/KEY to put in place of a function's local CodeUri, as sam package does")
    ap.add_argument("--parameter", "-p", action="append", type=_parameter, default=[], metavar="NAME=VALUE",
                    help="a template parameter's value (repeatable); the others keep their defaults")
    args = ap.parse_args(argv)
    if args.serve:
        if args.template:
            ap.error("--serve takes no TEMPLATE")
        return serve(sys.stdin, sys.stdout)
    if not args.template:
        ap.error("a TEMPLATE is needed")
    if args.code_uri and not args.code_uri.startswith("s3://"):
        ap.error("--code-uri must be an s3:// URI")

    try:
        out = transform(_load(args.template), args.parameter, args.region, args.code_uri)
    except InvalidDocumentException as e:
        print(_errors(args.template, e), file=sys.stderr)
        return 1
    # default=str: YAML timestamps (an unquoted 2010-09-09) as CloudFormation reads them.
    json.dump(out, sys.stdout, indent=1, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
