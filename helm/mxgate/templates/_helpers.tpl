{{/*
Names, labels and the rendered gateway config. Pure helpers: no resources are emitted here.
*/}}

{{- define "mxgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix: the release name, plus the chart name unless the release contains it. */}}
{{- define "mxgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mxgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels shared by every resource. */}}
{{- define "mxgate.labels" -}}
helm.sh/chart: {{ include "mxgate.chart" . }}
app.kubernetes.io/name: {{ include "mxgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "mxgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mxgate.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's resources. */}}
{{- define "mxgate.componentLabels" -}}
{{ include "mxgate.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The gateway pods' label selector as a string, for the operator to find them. */}}
{{- define "mxgate.gateway.selectorString" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s,app.kubernetes.io/component=gateway" (include "mxgate.name" .) .Release.Name -}}
{{- end -}}

{{- define "mxgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "mxgate.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create -}}
{{- default (printf "%s-gateway" (include "mxgate.fullname" .)) .Values.gateway.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.gateway.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mxgate.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (printf "%s-operator" (include "mxgate.fullname" .)) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap the operator writes the rendered policy into (mounted by the gateway). */}}
{{- define "mxgate.policyConfigMapName" -}}
{{- printf "%s-policy" (include "mxgate.fullname" .) -}}
{{- end -}}

{{/* The TLS Secret the gateway mounts and the operator's Certificate writes. */}}
{{- define "mxgate.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "mxgate.fullname" .)) .Values.gateway.tls.secretName -}}
{{- end -}}

{{/* Seconds the kubelet waits: preStop pause + SMTP drain deadline + a margin for exit. */}}
{{- define "mxgate.gateway.terminationGracePeriodSeconds" -}}
{{- $g := .Values.gateway -}}
{{- if kindIs "invalid" $g.terminationGracePeriodSeconds -}}
{{- add (int $g.preStopSleepSeconds) (int (ceil $g.limits.drainTimeout)) 10 -}}
{{- else -}}
{{- int $g.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* The TCP ports of the upstream addresses ("host:port" or "[v6]:port"), deduplicated. */}}
{{- define "mxgate.gateway.upstreamPorts" -}}
{{- $ports := list -}}
{{- range .Values.gateway.upstreams -}}
{{- $ports = append $ports (int (regexReplaceAll "^.*:([0-9]+)$" .address "${1}")) -}}
{{- end -}}
{{- toJson (uniq $ports) -}}
{{- end -}}

{{/*
The gateway config file (gateway/mxgate_gateway/config/model.py is the contract): values in
camelCase become the gateway's snake_case keys; gateway.extraConfig is deep-merged last.
*/}}
{{- define "mxgate.gateway.config" -}}
{{- $g := .Values.gateway -}}
{{- if not $g.hostname -}}
{{- fail "gateway.hostname is required: the MX host name, e.g. --set gateway.hostname=mx1.example.com" -}}
{{- end -}}
{{- if not $g.domains -}}
{{- fail "gateway.domains is required: the recipient domains to accept, e.g. --set 'gateway.domains={example.com}'" -}}
{{- end -}}
{{- if not $g.upstreams -}}
{{- fail "gateway.upstreams is required: the internal MTAs to relay to, e.g. --set 'gateway.upstreams[0].address=postfix.mail.svc:25'" -}}
{{- end -}}
{{- if and $g.proxyProtocol.enabled (not $g.proxyProtocol.trustedNetworks) -}}
{{- fail "gateway.proxyProtocol.trustedNetworks is required when gateway.proxyProtocol.enabled: the load balancers' CIDRs" -}}
{{- end -}}
{{- $addr := $g.listenAddress -}}
{{- if contains ":" $addr -}}{{- $addr = printf "[%s]" $addr -}}{{- end -}}
{{- $proxy := dict "enabled" $g.proxyProtocol.enabled "trusted_networks" $g.proxyProtocol.trustedNetworks "timeout" $g.proxyProtocol.timeout -}}
{{- $listen := dict "smtp" (printf "%s:2525" $addr) "http" (printf "%s:8025" $addr) "public" (printf "%s:8026" $addr) "proxy_protocol" $proxy -}}
{{- $upstreams := list -}}
{{- range $g.upstreams -}}
{{- $u := dict "address" .address -}}
{{- if .tls }}{{ $_ := set $u "tls" .tls }}{{ end -}}
{{- if .caFile }}{{ $_ := set $u "ca_file" .caFile }}{{ end -}}
{{- if .connectTimeout }}{{ $_ := set $u "connect_timeout" .connectTimeout }}{{ end -}}
{{- if .timeout }}{{ $_ := set $u "timeout" .timeout }}{{ end -}}
{{- if .finalReplyTimeout }}{{ $_ := set $u "final_reply_timeout" .finalReplyTimeout }}{{ end -}}
{{- $upstreams = append $upstreams $u -}}
{{- end -}}
{{- $policy := dict "mode" $g.policy.mode "min_tls_version" $g.policy.minTLSVersion "refusal" $g.policy.refusal -}}
{{- if $g.policy.traceHeader }}{{ $_ := set $policy "trace_header" $g.policy.traceHeader }}{{ end -}}
{{- $l := $g.limits -}}
{{- $limits := dict "max_message_size" $l.maxMessageSize "max_recipients" $l.maxRecipients "max_connections" $l.maxConnections "max_connections_per_ip" $l.maxConnectionsPerIP "greeting_timeout" $l.greetingTimeout "command_timeout" $l.commandTimeout "data_timeout" $l.dataTimeout "drain_timeout" $l.drainTimeout "max_session_duration" $l.maxSessionDuration "junk_command_limit" $l.junkCommandLimit "http_max_connections" $l.httpMaxConnections "http_header_timeout" $l.httpHeaderTimeout "http_request_timeout" $l.httpRequestTimeout -}}
{{- $cfg := dict "hostname" $g.hostname "listener" $g.listener "listen" $listen "domains" $g.domains "upstreams" $upstreams "policy" $policy "limits" $limits -}}
{{- $_ := set $cfg "smtp" (dict "bare_line_endings" $g.smtp.bareLineEndings "banner" $g.smtp.banner) -}}
{{- $_ := set $cfg "log" (dict "format" $g.log.format "level" $g.log.level) -}}
{{- if $g.tls.enabled -}}
{{- $_ := set $cfg "tls" (dict "cert" "/etc/mxgate/tls/tls.crt" "key" "/etc/mxgate/tls/tls.key" "min_version" $g.tls.minVersion "handshake_timeout" $g.tls.handshakeTimeout) -}}
{{- end -}}
{{- $rpt := .Values.mtaSts.tlsRpt -}}
{{- if $rpt.enabled -}}
{{- $_ := set $cfg "mta_sts" (dict "tlsrpt" (dict "enabled" true "max_compressed_bytes" $rpt.maxCompressedBytes "max_decompressed_bytes" $rpt.maxDecompressedBytes "max_reports_per_source" $rpt.maxReportsPerSource "max_sessions_per_source" $rpt.maxSessionsPerSource "source_interval" $rpt.sourceInterval "trusted_proxies" $rpt.trustedProxies)) -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite $cfg (deepCopy $g.extraConfig)) -}}
{{- end -}}

{{/* The parts of a rendered gateway config that only a restart applies (call with the dict). */}}
{{- define "mxgate.gateway.restartSettings" -}}
{{- $tls := dict -}}
{{- with .tls }}{{ $tls = dict "cert" .cert "key" .key "min_version" .min_version }}{{ end -}}
{{- toJson (dict "listen" .listen "tls" $tls "log" .log) -}}
{{- end -}}

{{/* A pod securityContext: the chart's hardened default, UID/GID from gateway.runAsUser unless
it is null (OpenShift's restricted SCC assigns them), with `override` merged over it.
Call with (dict "ctx" $ "override" $g.podSecurityContext "fsGroup" true). */}}
{{- define "mxgate.podSecurityContext" -}}
{{- $uid := .ctx.Values.gateway.runAsUser -}}
{{- $sc := dict "runAsNonRoot" true "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- if not (kindIs "invalid" $uid) -}}
{{- $_ := set $sc "runAsUser" $uid -}}
{{- $_ := set $sc "runAsGroup" $uid -}}
{{- if .fsGroup -}}{{- $_ := set $sc "fsGroup" $uid -}}{{- end -}}
{{- end -}}
{{- toYaml (mergeOverwrite $sc (deepCopy (.override | default dict))) -}}
{{- end -}}

{{/* A container securityContext: read-only root, no privilege escalation, no capabilities,
with `override` merged over it. Call with (dict "ctx" $ "override" $g.securityContext). */}}
{{- define "mxgate.containerSecurityContext" -}}
{{- $uid := .ctx.Values.gateway.runAsUser -}}
{{- $sc := dict "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "runAsNonRoot" true -}}
{{- $_ := set $sc "capabilities" (dict "drop" (list "ALL")) -}}
{{- $_ := set $sc "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- if not (kindIs "invalid" $uid) -}}
{{- $_ := set $sc "runAsUser" $uid -}}
{{- $_ := set $sc "runAsGroup" $uid -}}
{{- end -}}
{{- toYaml (mergeOverwrite $sc (deepCopy (.override | default dict))) -}}
{{- end -}}
