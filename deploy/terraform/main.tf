# Warden beside an agent on ECS Fargate: the task definition of deploy/task-definition.json, an ECS
# service, and a Cloud Map SRV record for the admin port so Prometheus finds every task (dns_sd in
# deploy/prometheus/prometheus.yml). A snippet: bring your own VPC, cluster, roles and secrets.

variable "cluster_arn" { type = string }
variable "warden_image" {
  type        = string
  description = "The Warden image (with your policy at /etc/warden/policy.yaml), pinned by digest."
  default     = "111122223333.dkr.ecr.us-west-2.amazonaws.com/agent-warden@sha256:<DIGEST>"
}
variable "agent_image" {
  type    = string
  default = "111122223333.dkr.ecr.us-west-2.amazonaws.com/support-bot@sha256:<AGENT_DIGEST>"
}
variable "execution_role_arn" { type = string }
variable "task_role_arn" { type = string }
variable "openai_key_secret_arn" { type = string }
variable "anthropic_key_secret_arn" { type = string }
variable "agent_token_secret_arn" { type = string }
variable "collector_token_secret_arn" { type = string }
variable "collector_url" {
  type    = string
  default = "https://warden-collector.internal.example.com"
}
variable "namespace_id" {
  type        = string
  description = "A Cloud Map private DNS namespace (for example warden.local)."
}
variable "subnets" { type = list(string) }
variable "security_groups" {
  type        = list(string)
  description = "Must let Prometheus reach TCP 15101."
}

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "support_bot" {
  name              = "/ecs/support-bot"
  retention_in_days = 30
}

locals {
  # The same probe as the image's HEALTHCHECK: node's fetch, no curl in the image.
  warden_health_probe = "fetch('http://127.0.0.1:'+((process.env.WARDEN_ADMIN_LISTEN||'').split(':').pop()||15101)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
  logs = {
    logDriver = "awslogs"
    options = {
      "awslogs-group"  = aws_cloudwatch_log_group.support_bot.name
      "awslogs-region" = data.aws_region.current.name
    }
  }
}

resource "aws_ecs_task_definition" "support_bot" {
  family                   = "support-bot"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = "1024"
  memory                   = "2048"
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn

  ephemeral_storage {
    size_in_gib = 30
  }
  volume {
    name = "warden-audit"
  }
  volume {
    name = "warden-tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = "warden"
      image                  = var.warden_image
      essential              = true
      readonlyRootFilesystem = true
      cpu                    = 256
      memoryReservation      = 384
      portMappings           = [{ name = "warden-admin", containerPort = 15101, protocol = "tcp" }]
      environment = [
        { name = "WARDEN_POLICY", value = "/etc/warden/policy.yaml" },
        { name = "WARDEN_DATA_DIR", value = "/var/lib/warden" },
        { name = "WARDEN_LISTEN", value = "127.0.0.1:15100" },
        { name = "WARDEN_ADMIN_LISTEN", value = "0.0.0.0:15101" },
        { name = "WARDEN_AGENT_CONTAINER", value = "support-agent" },
        { name = "WARDEN_COLLECTOR_URL", value = var.collector_url },
      ]
      secrets = [
        { name = "OPENAI_API_KEY", valueFrom = var.openai_key_secret_arn },
        { name = "ANTHROPIC_API_KEY", valueFrom = var.anthropic_key_secret_arn },
        { name = "WARDEN_COLLECTOR_TOKEN", valueFrom = var.collector_token_secret_arn },
        { name = "WARDEN_AGENT_TOKEN", valueFrom = var.agent_token_secret_arn },
      ]
      mountPoints = [
        { sourceVolume = "warden-audit", containerPath = "/var/lib/warden", readOnly = false },
        { sourceVolume = "warden-tmp", containerPath = "/tmp", readOnly = false },
      ]
      healthCheck = {
        command     = ["CMD", "node", "-e", local.warden_health_probe]
        interval    = 10
        timeout     = 3
        retries     = 3
        startPeriod = 5
      }
      stopTimeout      = 30
      logConfiguration = merge(local.logs, { options = merge(local.logs.options, { "awslogs-stream-prefix" = "warden" }) })
    },
    {
      name      = "support-agent"
      image     = var.agent_image
      essential = true
      dependsOn = [{ containerName = "warden", condition = "HEALTHY" }]
      environment = [
        { name = "OPENAI_BASE_URL", value = "http://127.0.0.1:15100/v1" },
        { name = "ANTHROPIC_BASE_URL", value = "http://127.0.0.1:15100/anthropic" },
      ]
      # The agent's SDKs send their "API key" to Warden: the local agent token, never a provider key.
      secrets = [
        { name = "OPENAI_API_KEY", valueFrom = var.agent_token_secret_arn },
        { name = "ANTHROPIC_API_KEY", valueFrom = var.agent_token_secret_arn },
      ]
      stopTimeout      = 30
      logConfiguration = merge(local.logs, { options = merge(local.logs.options, { "awslogs-stream-prefix" = "agent" }) })
    },
  ])
}

# support-bot.<namespace> SRV records: one per running task, pointing at its admin port.
resource "aws_service_discovery_service" "support_bot" {
  name = "support-bot"
  dns_config {
    namespace_id   = var.namespace_id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "SRV"
      ttl  = 10
    }
  }
  health_check_custom_config {
    failure_threshold = 1
  }
}

resource "aws_ecs_service" "support_bot" {
  name            = "support-bot"
  cluster         = var.cluster_arn
  launch_type     = "FARGATE"
  desired_count   = 2
  task_definition = aws_ecs_task_definition.support_bot.arn

  network_configuration {
    subnets          = var.subnets
    security_groups  = var.security_groups
    assign_public_ip = false
  }

  service_registries {
    registry_arn   = aws_service_discovery_service.support_bot.arn
    container_name = "warden"
    container_port = 15101
  }
}
