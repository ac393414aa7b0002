package awssim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
)

// protocol is the wire protocol an operation speaks; it decides error shapes.
type protocol int

const (
	protoLambda         protocol = iota // restJson1
	protoCloudFormation                 // awsQuery, XML
	protoEC2                            // ec2Query, XML
)

// apiError is an error as a service sends it.
type apiError struct {
	status  int
	code    string
	message string
	// service marks a fault of the service rather than the caller (Lambda
	// "Type":"Service", query "Type" Receiver).
	service bool
	// reason and retryAfter are TooManyRequestsException's extra members.
	reason     string
	retryAfter int
}

func (e apiError) Error() string { return e.code + ": " + e.message }

func (p protocol) writeError(w http.ResponseWriter, e apiError) {
	switch p {
	case protoLambda:
		writeLambdaError(w, e)
	case protoCloudFormation:
		writeQueryError(w, e)
	default:
		writeEC2Error(w, e)
	}
}

// writeLambdaError answers as Lambda does: the code in X-Amzn-ErrorType and a
// JSON body with "Type" and a lower-case "message".
func writeLambdaError(w http.ResponseWriter, e apiError) {
	body := map[string]string{"Type": "User", "message": e.message}
	if e.service {
		body["Type"] = "Service"
	}
	if e.reason != "" {
		body["Reason"] = e.reason
	}
	h := w.Header()
	h.Set("X-Amzn-ErrorType", e.code)
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeJSON(w, e.status, body)
}

// writeQueryError answers as an awsQuery service (CloudFormation) does.
func writeQueryError(w http.ResponseWriter, e apiError) {
	type errorXML struct {
		Type    string
		Code    string
		Message string
	}
	type errorResponse struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Error     errorXML
		RequestID string `xml:"RequestId"`
	}
	typ := "Sender"
	if e.service {
		typ = "Receiver"
	}
	writeXML(w, e.status, errorResponse{Xmlns: cloudFormationNS, Error: errorXML{Type: typ, Code: e.code, Message: e.message},
		RequestID: "00000000-0000-4000-8000-000000000000"})
}

// writeEC2Error answers as EC2 does: Response/Errors/Error.
func writeEC2Error(w http.ResponseWriter, e apiError) {
	type errorXML struct {
		Code    string
		Message string
	}
	type response struct {
		XMLName   xml.Name   `xml:"Response"`
		Errors    []errorXML `xml:"Errors>Error"`
		RequestID string
	}
	writeXML(w, e.status, response{Errors: []errorXML{{Code: e.code, Message: e.message}},
		RequestID: "00000000-0000-4000-8000-000000000000"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeXML(w http.ResponseWriter, status int, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(out)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}
