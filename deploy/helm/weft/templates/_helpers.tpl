{{/* The image of every Weft container. */}}
{{- define "weft.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "weft.labels" -}}
app.kubernetes.io/part-of: weft
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
weft.io/cluster: {{ .Values.cluster.name }}
{{- end -}}

{{/* Store flags shared by the agent and the apiserver (config keys);
     an embedded store is etcd served by the apiserver, which the agents
     reach with the agent certificate of the clustermesh Secret. */}}
{{- define "weft.storeConfig" -}}
{{- if eq .Values.store.kind "embedded" }}
kvstore: etcd
kvstore-endpoints: {{ toJson .Values.store.endpoints }}
kvstore-prefix: {{ .Values.store.prefix | quote }}
kvstore-ca-file: /etc/weft/clustermesh/ca.crt
kvstore-cert-file: /etc/weft/clustermesh/agent.crt
kvstore-key-file: /etc/weft/clustermesh/agent.key
{{- else }}
kvstore: {{ .Values.store.kind }}
kvstore-endpoints: {{ toJson .Values.store.endpoints }}
kvstore-prefix: {{ .Values.store.prefix | quote }}
{{- if .Values.store.tlsSecret }}
kvstore-ca-file: /etc/weft/store-tls/ca.crt
kvstore-cert-file: /etc/weft/store-tls/tls.crt
kvstore-key-file: /etc/weft/store-tls/tls.key
{{- end }}
{{- end }}
{{- end -}}

{{/* Store credentials as volumes and mounts. */}}
{{- define "weft.storeVolumes" -}}
{{- if .Values.store.tlsSecret }}
- name: store-tls
  secret:
    secretName: {{ .Values.store.tlsSecret }}
{{- end }}
{{- end -}}
{{- define "weft.storeMounts" -}}
{{- if .Values.store.tlsSecret }}
- name: store-tls
  mountPath: /etc/weft/store-tls
  readOnly: true
{{- end }}
{{- end -}}
{{- define "weft.storeEnv" -}}
{{- if .Values.store.consulTokenSecret }}
- name: WEFT_KVSTORE_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.store.consulTokenSecret }}
      key: token
{{- end }}
{{- end -}}
